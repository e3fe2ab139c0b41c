"""The HTTP API: FastAPI app, one router per area, token auth with roles, the terminal and dashboard pages.

Routes are thin: they parse a request into a command or a query, call the service layer (``api.services``)
and shape its result; they never touch repositories or SQL.
"""
