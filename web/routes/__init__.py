"""The console's routes, one module per page family; `api` is the JSON API."""
