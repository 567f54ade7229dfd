"""Database access: connection factory (Azure SQL via pyodbc, embedded SQLite locally) and schema."""
