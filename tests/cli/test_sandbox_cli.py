"""`fmap sandbox serve`: one command for every dialect's emulator, loopback only, token-guarded;
bad input is a message and exit 2, never a traceback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import runtime.dialects as dialects
import runtime.targets as targets
from fmap import sandboxcmd
from fmap.cli import app
from runtime.dialects import get_dialect
from runtime.dialects.base import ServedSandbox
from tests.dialects.served import serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoho"


def invoke(*args: str):
    return CliRunner().invoke(app, ["sandbox", "serve", *args])


def no_traceback(res) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception


def test_unknown_dialect_is_named_with_a_suggestion():
    res = invoke("--dialect", "salesfroce", "--port", "0")
    assert res.exit_code == 2 and "unknown dialect 'salesfroce'" in res.output
    assert "did you mean 'salesforce'" in res.output
    no_traceback(res)


def test_dialect_without_serve_hook_says_so(monkeypatch):
    # a registered dialect with no package of hooks (what a fifth CRM looks like before its
    # sandbox exists)
    bare = dataclasses.replace(get_dialect("zoho"), name="barecrm", label="Bare CRM")
    monkeypatch.setitem(dialects._REGISTERED, "barecrm", bare)
    res = invoke("--dialect", "barecrm", "--port", "0")
    assert res.exit_code == 2, res.output
    assert "barecrm has no HTTP sandbox" in res.output and "sandbox:barecrm" in res.output
    no_traceback(res)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_non_loopback_is_refused_without_allow_remote(host):
    res = invoke("--host", host, "--port", "0")
    assert res.exit_code == 2 and f"refusing to bind {host}" in res.output


def test_allow_remote_gets_past_the_refusal(monkeypatch, tmp_path):
    calls = _fake_hook(monkeypatch)
    res = invoke("--dialect", "zoho", "--host", "0.0.0.0", "--allow-remote", "--port", "0",
                 "--db", str(tmp_path / "x.sqlite"))
    assert res.exit_code == 0, res.output
    assert calls["serve"]["host"] == "0.0.0.0"


@pytest.mark.parametrize("args, message", [
    (["--edition", "bogus"], "unknown Zoho edition 'bogus'"),
    (["--faults", "seed=1,nonsense_rate=0.5"], "unknown fault option"),
    (["--faults", "throttle_rate=lots"], "throttle_rate='lots' is not a number"),
    (["--option", "credits"], "expected KEY=VALUE"),
    (["--option", "credits=many"], "credits='many' is not a number"),
    (["--users", "no-such-users.json"], "cannot read users file"),
])
def test_bad_options_are_messages_not_tracebacks(tmp_path, args, message):
    res = invoke("--port", "0", "--db", str(tmp_path / "x.sqlite"), *args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    no_traceback(res)


def _fake_hook(monkeypatch) -> dict:
    """Record what the CLI hands the dialect hook and the server, without serving."""
    calls: dict = {}

    def hook(schema, path, users, token, options):
        calls["hook"] = {"schema": schema, "path": path, "users": users, "token": token,
                         "options": options}
        return ServedSandbox(app=object(), token=token or "generated-token",
                             client_env={"FAKE_TOKEN": token or "generated-token"},
                             base_path="/api", target_scheme="fake",
                             close=lambda: calls.setdefault("closed", True))

    def fake_serve(served, sock, name, host, db, *, print_env):
        calls["serve"] = {"host": host, "port": sock.getsockname()[1], "print_env": print_env}
        sock.close()

    real = targets._dialect_hook
    monkeypatch.setattr(targets, "_dialect_hook",
                        lambda name, attr: hook if attr == "serve_sandbox" else real(name, attr))
    monkeypatch.setattr(sandboxcmd, "_serve", fake_serve)
    return calls


def test_generic_and_dialect_options_reach_the_hook_as_text(monkeypatch, tmp_path):
    calls = _fake_hook(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FMAP_SANDBOX_TOKEN", raising=False)
    res = invoke("--dialect", "pipedrive", "--port", "0", "--option", "plan=growth",
                 "--option", "seats=3", "--option", "seats=4", "--faults", "seed=2",
                 "--external-id-field", "ext_id", "--credits", "50",
                 "--users", str(FIXTURES / "users.json"))
    assert res.exit_code == 0, res.output
    hook = calls["hook"]
    assert hook["options"] == {"plan": "growth", "seats": "4", "faults": "seed=2",
                               "external_id_field": "ext_id", "credits": "50.0"}
    assert hook["token"] is None and calls["serve"]["print_env"] is True
    assert hook["path"] == Path(".fmap") / "sandbox-pipedrive-served.sqlite"
    assert (tmp_path / ".fmap").is_dir()
    assert {u.email for u in hook["users"]} >= {"dr.jones@example.com"}
    assert any(o.api_name for o in hook["schema"].objects)
    assert calls.get("closed") is True


def test_token_from_environment_is_passed_and_not_printed(monkeypatch, tmp_path):
    calls = _fake_hook(monkeypatch)
    monkeypatch.setenv("FMAP_SANDBOX_TOKEN", "from-env-token")
    res = invoke("--dialect", "salesforce", "--port", "0", "--db", str(tmp_path / "s.sqlite"))
    assert res.exit_code == 0, res.output
    assert calls["hook"]["token"] == "from-env-token"
    assert calls["serve"]["print_env"] is False
    assert calls["hook"]["options"] == {}  # zoho-only flags are not sent unless given


def test_served_app_demands_the_token_and_applies_limit_options(tmp_path):
    token = "cli-test-token"
    with serve(tmp_path, "zoho", ["--option", "credits=3"], token) as port:
        url = f"http://127.0.0.1:{port}/crm/v8/settings/modules"
        with httpx.Client(timeout=10) as http:
            assert http.get(url).status_code == 401
            assert http.get(url, headers={"Authorization": "Zoho-oauthtoken wrong"}
                            ).status_code == 401
            assert http.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 401
            good = {"Authorization": f"Zoho-oauthtoken {token}"}
            statuses = [http.get(url, headers=good).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # --option credits=3 reached the tier
    out = (tmp_path / "served-zoho.out").read_text()
    err = (tmp_path / "served-zoho.err").read_text()
    assert token not in out and token not in err  # a token from the environment is not echoed
    assert f"target: zoho://127.0.0.1:{port}" in err


def test_generated_token_is_printed_once_as_client_env(tmp_path):
    with serve(tmp_path, "zoho", token=None) as port:
        lines = (tmp_path / "served-zoho.out").read_text().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ZOHO_ACCESS_TOKEN=")
        token = lines[0].split("=", 1)[1]
        r = httpx.get(f"http://127.0.0.1:{port}/crm/v8/settings/modules",
                      headers={"Authorization": f"Zoho-oauthtoken {token}"}, timeout=10)
        assert r.status_code == 200
    assert (tmp_path / "served-zoho.out").read_text().count("ZOHO_ACCESS_TOKEN") == 1


def test_client_env_without_the_token_is_printed_even_for_a_preset_token():
    served = ServedSandbox(app=object(), token="user-set-token",
                           client_env={"X_API_KEY": "user-set-token", "X_CODES": "text=1,date=2"},
                           base_path="/api", target_scheme="x")
    assert sandboxcmd.client_env_lines(served, print_token=False) == [("X_CODES", "text=1,date=2")]
    assert sandboxcmd.client_env_lines(served, print_token=True) == [
        ("X_API_KEY", "user-set-token"), ("X_CODES", "text=1,date=2")]


def test_freshsales_field_type_codes_are_printed_but_a_preset_token_is_not(tmp_path):
    from runtime.dialects.freshsales.sandbox import SANDBOX_FIELD_TYPE_CODES

    codes = ",".join(f"{k}={v}" for k, v in SANDBOX_FIELD_TYPE_CODES.items())
    token = "preset-freshsales-token"
    with serve(tmp_path, "freshsales", token=token):
        pass
    out = (tmp_path / "served-freshsales.out").read_text()
    err = (tmp_path / "served-freshsales.err").read_text()
    assert out.splitlines() == [f"FRESHSALES_FIELD_TYPE_CODES={codes}"]
    assert token not in out and token not in err and "FRESHSALES_API_KEY" not in out
    generated = tmp_path / "gen"
    generated.mkdir()
    with serve(generated, "freshsales", token=None):
        pass
    lines = (generated / "served-freshsales.out").read_text().splitlines()
    assert sorted(line.split("=", 1)[0] for line in lines) == [
        "FRESHSALES_API_KEY", "FRESHSALES_FIELD_TYPE_CODES"]
