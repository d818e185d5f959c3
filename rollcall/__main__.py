from rollcall.cli import app

app()
