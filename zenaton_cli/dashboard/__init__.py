"""The dashboard: the project's instances in a browser, served by `zenaton dashboard`.

Server-rendered pages (Starlette, Jinja2) over the same client API as the command line:
it reads the store through ``Control`` and the views `inspect` prints, and every action
posts the same inbox item as `zenaton pause` (or kill, retry, ...), which the daemon applies.

- ``access``: the token, its cookie, the CSRF token and the Host check (every request);
- ``app``: the routes and what a request shares (store per thread, templates, project);
- ``pages``, ``api``, ``actions``: HTML pages, the same data as JSON, the POSTed actions;
- ``listing``: the instances page's filters and paging, shared by the page and the API;
- ``timeline_svg``: the picture of an instance's attempts and waits on a time axis;
- ``metrics``: `/metrics` in the Prometheus text format;
- ``server``: uvicorn on a socket we bind (foreground, or a thread beside the daemon).

Needs the ``dashboard`` extra: ``pip install "zenaton[dashboard]"``.
"""
