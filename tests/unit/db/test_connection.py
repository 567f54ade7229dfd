"""Azure SQL connection building: connection string, token packing, transient retry bound."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import pyodbc
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from shared.config import SettingsError, load_settings
from shared.db.connection import (
    SQL_COPT_SS_ACCESS_TOKEN,
    SQL_SCOPE,
    Database,
    DatabaseError,
    RetryPolicy,
    azure_connection_string,
    azure_sql_database,
    build_database,
    is_transient,
    pack_access_token,
)
from shared.errors import Conflict, DependencyUnavailable
from tests.conftest import BASE_TEST_ENV

AZURE_ENV = {**BASE_TEST_ENV, "SQL_SERVER": "sql-phi.database.windows.net", "SQL_DATABASE": "phi"}


def _sql(**overrides: Any) -> Any:
    return dataclasses.replace(load_settings(AZURE_ENV).sql, **overrides)


def test_token_packing_is_length_prefixed_utf16le() -> None:
    packed = pack_access_token("eyJ0eXAi.abc")
    raw = "eyJ0eXAi.abc".encode("utf-16-le")
    assert packed == struct.pack(f"<I{len(raw)}s", len(raw), raw)
    assert struct.unpack("<I", packed[:4])[0] == 24
    assert packed[4:].decode("utf-16-le") == "eyJ0eXAi.abc"


def test_connection_string_is_driver18_encrypted_and_keyless() -> None:
    conn = azure_connection_string(_sql())
    parts = dict(p.split("=", 1) for p in conn.strip(";").split(";"))
    assert parts["Driver"] == "{ODBC Driver 18 for SQL Server}"
    assert parts["Server"] == "tcp:sql-phi.database.windows.net,1433"
    assert parts["Database"] == "phi"
    assert parts["Encrypt"] == "yes"
    assert parts["TrustServerCertificate"] == "no"
    lowered = conn.lower()
    for forbidden in (
        "uid=",
        "pwd=",
        "password",
        "authentication=",
        "trusted_connection",
        "columnencryption",
    ):
        assert forbidden not in lowered


def test_always_encrypted_adds_the_managed_identity_key_store() -> None:
    conn = azure_connection_string(_sql(always_encrypted=True))
    assert "ColumnEncryption=Enabled;" in conn
    assert "KeyStoreAuthentication=KeyVaultManagedIdentity;" in conn
    assert "KeyStorePrincipalId" not in conn and "KeyStoreSecret" not in conn


class _Credential:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.calls += 1
        assert scopes == (SQL_SCOPE,)
        return AccessToken(f"token-{self.calls}", 4102444800)


class _FakeConnection:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.committed = self.rolled_back = self.closed = False

    def cursor(self) -> Any:
        outer = self

        class C:
            rowcount = 1

            def execute(self, *_: Any) -> None:
                if outer.fail is not None:
                    raise outer.fail

            def close(self) -> None:
                pass

        return C()

    def commit(self) -> None:
        self.committed = True

    def rollback(self) -> None:
        self.rolled_back = True

    def close(self) -> None:
        self.closed = True


def test_each_connection_gets_a_fresh_token_in_attrs_before(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_connect(conn_str: str, **kwargs: Any) -> _FakeConnection:
        seen.append({"conn_str": conn_str, **kwargs})
        return _FakeConnection()

    monkeypatch.setattr(pyodbc, "connect", fake_connect)
    credential = _Credential()
    db = azure_sql_database(_sql(), credential)  # type: ignore[arg-type]
    db.run(lambda cur: cur.execute("SELECT 1"))
    db.run(lambda cur: cur.execute("SELECT 1"))
    assert credential.calls == 2
    assert [s["attrs_before"] for s in seen] == [
        {SQL_COPT_SS_ACCESS_TOKEN: pack_access_token("token-1")},
        {SQL_COPT_SS_ACCESS_TOKEN: pack_access_token("token-2")},
    ]
    assert all(s["autocommit"] is False for s in seen)


def test_token_failure_is_a_503_without_detail(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def get_token(self, *_: Any, **__: Any) -> AccessToken:
            raise ClientAuthenticationError("IMDS said no: secret-detail")

    monkeypatch.setattr(pyodbc, "connect", lambda *a, **k: pytest.fail("must not connect"))
    db = azure_sql_database(_sql(), Broken())  # type: ignore[arg-type]
    with pytest.raises(DependencyUnavailable) as caught:
        db.run(lambda cur: None)
    assert caught.value.dependency == "sql"
    assert "secret-detail" not in repr(caught.value) and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (pyodbc.Error("HY000", "[Microsoft][ODBC Driver 18][SQL Server]Database unavailable (40613)"), True),
        (pyodbc.Error("42000", "[SQL Server]Resource limit reached (10928) (SQLExecDirectW)"), True),
        (pyodbc.Error("08S01", "[Microsoft]Communication link failure"), True),
        (pyodbc.Error("HYT00", "Login timeout expired"), True),
        (pyodbc.Error("42S02", "[SQL Server]Invalid object name 'x'. (208)"), False),
        (pyodbc.Error("23000", "[SQL Server]Violation of PRIMARY KEY constraint (2627)"), False),
    ],
)
def test_transient_classification(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_transient_errors_are_retried_with_backoff_up_to_the_bound() -> None:
    attempts: list[_FakeConnection] = []
    sleeps: list[float] = []

    def connect() -> _FakeConnection:
        conn = _FakeConnection(pyodbc.Error("HY000", "Server is busy (40501)"))
        attempts.append(conn)
        return conn

    db = Database(
        connect, "mssql", retry=RetryPolicy(attempts=4, base_delay=0.5), sleep=sleeps.append,
        driver_errors=(pyodbc.Error,),
    )  # fmt: skip
    with pytest.raises(DependencyUnavailable) as caught:
        db.run(lambda cur: cur.execute("UPDATE t SET a = ?", (1,)))
    assert caught.value.dependency == "sql" and caught.value.status == 503
    assert len(attempts) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert all(c.rolled_back and not c.committed and c.closed for c in attempts)


def test_a_transient_error_then_success_commits_once() -> None:
    outcomes = [pyodbc.Error("HY000", "(40613)"), None]
    conns: list[_FakeConnection] = []

    def connect() -> _FakeConnection:
        conns.append(_FakeConnection(outcomes.pop(0)))
        return conns[-1]

    db = Database(connect, "mssql", sleep=lambda _: None, driver_errors=(pyodbc.Error,))
    assert db.run(lambda cur: (cur.execute("SELECT 1"), "done")[1]) == "done"
    assert [c.committed for c in conns] == [False, True]


def test_non_transient_errors_are_not_retried() -> None:
    conns: list[_FakeConnection] = []

    def connect() -> _FakeConnection:
        conns.append(_FakeConnection(pyodbc.Error("42S02", "Invalid object name (208)")))
        return conns[-1]

    db = Database(connect, "mssql", sleep=lambda _: pytest.fail("no retry"), driver_errors=(pyodbc.Error,))
    with pytest.raises(DatabaseError) as caught:
        db.run(lambda cur: cur.execute("SELECT 1"))
    assert len(conns) == 1 and conns[0].rolled_back
    assert caught.value.status == 500 and caught.value.__suppress_context__


def test_driver_messages_with_values_never_travel_on() -> None:
    """SQL Server's duplicate-key message quotes the key; the error raised must not."""
    message = (
        "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Violation of UNIQUE KEY constraint "
        "'uq_patients_mrn'. The duplicate key value is (MRN0042SYNTH). (2627) (SQLExecDirectW)"
    )
    db = Database(
        lambda: _FakeConnection(pyodbc.Error("23000", message)), "mssql", driver_errors=(pyodbc.Error,)
    )
    with pytest.raises(Conflict) as caught:
        db.run(lambda cur: cur.execute("INSERT"))
    assert caught.value.code == "constraint_violation"
    assert "MRN0042SYNTH" not in repr(caught.value) + str(caught.value) + str(caught.value.errors)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(i) for i in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_embedded_sqlite_only_in_development() -> None:
    settings = load_settings(BASE_TEST_ENV)
    assert build_database(settings, lambda: pytest.fail("no credential")).dialect == "sqlite"
    production = dataclasses.replace(settings, environment="Production")
    with pytest.raises(SettingsError) as caught:
        build_database(production, lambda: pytest.fail("no credential"))
    assert caught.value.setting == "SQL_SERVER"
