#!/usr/bin/env bash
# azd postprovision hook: apply the schema and create the app identity's database user.
# Uses the signed-in Entra account of whoever runs `azd up` (must be the server's Entra admin):
# `sqlcmd --authentication-method ActiveDirectoryDefault`. No SQL logins or passwords exist.
# Expects azd environment values: SQL_SERVER, SQL_DATABASE, APP_IDENTITY_NAME, and optionally
# SQL_ALWAYS_ENCRYPTED=true (then the keys in schema.always-encrypted.sql must exist first).
set -euo pipefail
cd "$(dirname "$0")"
: "${SQL_SERVER:?}" "${SQL_DATABASE:?}" "${APP_IDENTITY_NAME:?}"
schema=schema.sql
if [ "${SQL_ALWAYS_ENCRYPTED:-false}" = "true" ]; then schema=schema.always-encrypted.sql; fi
run() {
  sqlcmd --authentication-method ActiveDirectoryDefault -S "tcp:${SQL_SERVER},1433" -d "${SQL_DATABASE}" \
    -N -b "$@"
}
run -i "$schema"
run -v APP_IDENTITY_NAME="${APP_IDENTITY_NAME}" -i bootstrap-app-user.sql
echo "SQL schema applied and database user for ${APP_IDENTITY_NAME} bootstrapped."
