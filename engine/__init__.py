"""Nurture's engine: the spec language, the pure core, services, the store and mail."""
