"""Provider secrets reach the CLI from a file, stdin or the environment, never from argv."""

import io

import pytest
from payplane_cli import main as cli
from payplane_cli.providers import ProviderError, secret_input


def test_file_stdin_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "key"
    path.write_text("sk_from_file\n")
    assert secret_input(str(path), "UNUSED_ENV") == "sk_from_file"
    monkeypatch.setattr("sys.stdin", io.StringIO("sk_from_stdin\n"))
    assert secret_input("-", "UNUSED_ENV") == "sk_from_stdin"
    monkeypatch.setenv("PROVIDER_API_KEY", "sk_from_env")
    assert secret_input(None, "PROVIDER_API_KEY") == "sk_from_env"
    monkeypatch.delenv("PROVIDER_API_KEY")
    with pytest.raises(ProviderError, match="PROVIDER_API_KEY"):
        secret_input(None, "PROVIDER_API_KEY")


def test_secrets_are_not_accepted_as_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(
            ["provider", "register", "p", "--endpoint", "http://x", "--api-key", "sk_live_1"]
        )
    assert "unrecognized arguments: --api-key" in capsys.readouterr().err
