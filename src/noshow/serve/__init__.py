"""``noshow serve``: the scoring service and the staff page.

- :mod:`noshow.serve.service`: the work, without a web framework: a model loaded once, the
  history indexed once, every request scored by :func:`noshow.clinic.scoring.score`.
- :mod:`noshow.serve.app`: the FastAPI application (endpoints, errors as JSON, the page).
- :mod:`noshow.serve.guard`: what keeps it safe: a bearer token, a limit on request bodies.
- ``page/``: the staff page (plain HTML, CSS and a little JavaScript; nothing from the internet).

FastAPI is an optional extra (``pip install 'noshow[serve]'``); nothing else imports this package.
"""
