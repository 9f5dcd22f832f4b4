"""Pages and the JSON API (aiohttp + Jinja2). Views call meetings/ services; they never write the database."""
