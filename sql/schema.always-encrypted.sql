-- Azure SQL schema, Always Encrypted variant. Identifiers and clinical values are encrypted on the
-- client (the Functions app) with a column encryption key whose master key lives in Key Vault; the
-- database and its administrators only ever see ciphertext.
--
-- Rules this file follows (see README.md):
-- * Encrypted string columns are nvarchar with a BIN2 collation (required for deterministic
--   encryption; harmless for randomized).
-- * DETERMINISTIC only where the app looks up by equality: mrn (find by MRN, uniqueness).
--   Everything else is RANDOMIZED, which leaks no equality pattern.
-- * Ids, status, timestamps used by retention (updated_at, legal_hold) and sizes stay plaintext:
--   they are range-queried or joined, which encrypted columns do not support, and hold no identifier.
-- * The app connects with ColumnEncryption=Enabled;KeyStoreAuthentication=KeyVaultManagedIdentity
--   and binds every value as a parameter (shared/db/connection.py, shared/repositories/).
--
-- Prerequisites (run once by a key administrator, not by the app; needs the Key Vault key URL):
--   CREATE COLUMN MASTER KEY [cmk_phi] WITH (
--       KEY_STORE_PROVIDER_NAME = N'AZURE_KEY_VAULT',
--       KEY_PATH = N'https://<vault>.vault.azure.net/keys/<key>/<version>');
--   CREATE COLUMN ENCRYPTION KEY [cek_phi] WITH VALUES (
--       COLUMN_MASTER_KEY = [cmk_phi], ALGORITHM = 'RSA_OAEP', ENCRYPTED_VALUE = 0x...);
-- (SSMS or the SqlServer PowerShell module New-SqlColumnEncryptionKey generate ENCRYPTED_VALUE.)
SET XACT_ABORT ON;
BEGIN TRANSACTION;

IF OBJECT_ID(N'dbo.patients', N'U') IS NULL
CREATE TABLE dbo.patients (
    id                  char(36)       NOT NULL CONSTRAINT pk_patients PRIMARY KEY,
    mrn                 nvarchar(20)   COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = DETERMINISTIC,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL CONSTRAINT uq_patients_mrn UNIQUE,
    given_name          nvarchar(100)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    family_name         nvarchar(100)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    birth_date          date
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    sex                 nvarchar(10)   NOT NULL,
    phone               nvarchar(16)   COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    email               nvarchar(254)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    address_line        nvarchar(200)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    city                nvarchar(100)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    state               nchar(2)       NULL,
    postal_code         nvarchar(10)   COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    insurance_payer     nvarchar(100)  NULL,
    insurance_member_id nvarchar(30)   COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    admission_date      date
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    discharge_date      date
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    allergies           nvarchar(max)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    problems            nvarchar(max)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    note                nvarchar(4000) COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NULL,
    legal_hold          bit            NOT NULL CONSTRAINT df_patients_hold DEFAULT 0,
    created_at          datetime2(6)   NOT NULL,
    updated_at          datetime2(6)   NOT NULL
);

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ix_patients_retention')
CREATE INDEX ix_patients_retention ON dbo.patients (legal_hold, updated_at);

IF OBJECT_ID(N'dbo.documents', N'U') IS NULL
CREATE TABLE dbo.documents (
    id           char(36)     NOT NULL CONSTRAINT pk_documents PRIMARY KEY,
    patient_id   char(36)     NOT NULL CONSTRAINT fk_documents_patient REFERENCES dbo.patients (id),
    content_type varchar(40)  NOT NULL,
    size_bytes   bigint       NOT NULL,
    sha256       char(64)     NOT NULL,
    blob_name    char(36)     NOT NULL CONSTRAINT uq_documents_blob UNIQUE,
    status       varchar(10)  NOT NULL CONSTRAINT ck_documents_status CHECK (status IN ('received', 'processed')),
    created_at   datetime2(6) NOT NULL
);

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ix_documents_patient')
CREATE INDEX ix_documents_patient ON dbo.documents (patient_id);

IF OBJECT_ID(N'dbo.lab_results', N'U') IS NULL
CREATE TABLE dbo.lab_results (
    lab_order_id varchar(40)   NOT NULL CONSTRAINT pk_lab_results PRIMARY KEY,
    version      int           NOT NULL,
    patient_id   char(36)      NOT NULL CONSTRAINT fk_lab_results_patient REFERENCES dbo.patients (id),
    code         nvarchar(10)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    value        nvarchar(64)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    unit         nvarchar(30)  COLLATE Latin1_General_BIN2
        ENCRYPTED WITH (COLUMN_ENCRYPTION_KEY = [cek_phi], ENCRYPTION_TYPE = RANDOMIZED,
                        ALGORITHM = 'AEAD_AES_256_CBC_HMAC_SHA_256') NOT NULL,
    effective_at datetime2(6)  NOT NULL,
    received_at  datetime2(6)  NOT NULL
);

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ix_lab_results_patient')
CREATE INDEX ix_lab_results_patient ON dbo.lab_results (patient_id);

COMMIT TRANSACTION;
