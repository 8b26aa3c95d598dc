"""The signed-in web app's pages, one blueprint per section (see webapp/README.md)."""
