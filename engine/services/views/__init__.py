"""Read-side queries for the web app's pages: plain dataclasses in, no ORM rows out.

Pages never query the database themselves (and templates never touch a model): a view
asks one function here for the data it shows. Each function opens its own unit of work
and reads only; one module per page family.
"""
