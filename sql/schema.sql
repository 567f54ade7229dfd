-- Azure SQL schema for the clinical-intake workload (plain variant: TDE encrypts at rest).
-- For column-level encryption with keys in Key Vault, use schema.always-encrypted.sql instead.
-- Mirrors the portable subset in shared/db/schema.py; timestamps are UTC datetime2.
SET XACT_ABORT ON;
BEGIN TRANSACTION;

IF OBJECT_ID(N'dbo.patients', N'U') IS NULL
CREATE TABLE dbo.patients (
    id                  char(36)       NOT NULL CONSTRAINT pk_patients PRIMARY KEY,
    mrn                 nvarchar(20)   NOT NULL CONSTRAINT uq_patients_mrn UNIQUE,
    given_name          nvarchar(100)  NOT NULL,
    family_name         nvarchar(100)  NOT NULL,
    birth_date          date           NOT NULL,
    sex                 nvarchar(10)   NOT NULL,
    phone               nvarchar(16)   NULL,
    email               nvarchar(254)  NULL,
    address_line        nvarchar(200)  NULL,
    city                nvarchar(100)  NULL,
    state               nchar(2)       NULL,
    postal_code         nvarchar(10)   NULL,
    insurance_payer     nvarchar(100)  NULL,
    insurance_member_id nvarchar(30)   NULL,
    admission_date      date           NULL,
    discharge_date      date           NULL,
    allergies           nvarchar(max)  NOT NULL,  -- JSON array of codes
    problems            nvarchar(max)  NOT NULL,  -- JSON array of codes
    note                nvarchar(4000) NULL,
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
    code         varchar(10)   NOT NULL,
    value        nvarchar(64)  NOT NULL,
    unit         nvarchar(30)  NOT NULL,
    effective_at datetime2(6)  NOT NULL,
    received_at  datetime2(6)  NOT NULL
);

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'ix_lab_results_patient')
CREATE INDEX ix_lab_results_patient ON dbo.lab_results (patient_id);

COMMIT TRANSACTION;
