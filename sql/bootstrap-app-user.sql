-- Create the Function App's managed identity as a contained database user with least privilege.
-- Run by an Entra admin of the server (azd postprovision: sql/postprovision.sh), with sqlcmd
-- variable APP_IDENTITY_NAME = the user-assigned identity's display name. Idempotent.
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'$(APP_IDENTITY_NAME)')
    CREATE USER [$(APP_IDENTITY_NAME)] FROM EXTERNAL PROVIDER;

-- Data access only on the workload tables: no db_owner, no DDL, no db_datareader/db_datawriter on
-- everything. Deletes are needed by the retention sweep.
GRANT SELECT, INSERT, UPDATE, DELETE ON OBJECT::dbo.patients    TO [$(APP_IDENTITY_NAME)];
GRANT SELECT, INSERT, UPDATE, DELETE ON OBJECT::dbo.documents   TO [$(APP_IDENTITY_NAME)];
GRANT SELECT, INSERT, UPDATE, DELETE ON OBJECT::dbo.lab_results TO [$(APP_IDENTITY_NAME)];

-- Always Encrypted: the app must read key metadata to encrypt parameters and decrypt results.
-- (The column master key itself is in Key Vault; the identity needs get/unwrapKey/verify there.)
GRANT VIEW ANY COLUMN MASTER KEY DEFINITION TO [$(APP_IDENTITY_NAME)];
GRANT VIEW ANY COLUMN ENCRYPTION KEY DEFINITION TO [$(APP_IDENTITY_NAME)];
