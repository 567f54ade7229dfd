"""Repositories over DB-API 2.0 (`?` parameters only): stdlib sqlite3, pyodbc + SQLite ODBC, Azure SQL."""
