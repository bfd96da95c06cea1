"""The history store: typed series and whole blocks in SQL (SQLite embedded, PostgreSQL
for deployments), written by services.history and read by the gateway."""
