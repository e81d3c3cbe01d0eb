"""gunicorn serves `wsgi:app`; `flask --app wsgi …` reaches the same commands as `mvno`."""

from app import create_app

app = create_app()
