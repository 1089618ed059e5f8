"""The operator's console: an HTTP API and server-rendered pages over the node's database and
bus (`main.py serve`). `web.app.create_app` builds it; `web.serve` runs it on uvicorn."""
