"""The `harmony` command: version, exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli.main import main, package_version
from controller.settings import get_settings


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"harmony {package_version()}"


def test_bad_usage_is_exit_2_and_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["db", "no-such-command"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "No such command 'no-such-command'" in err


def test_missing_argument_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["db", "downgrade"], capsys)
    assert code == 2
    assert "Missing argument" in err


def test_db_upgrade_then_current(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["db", "upgrade"], capsys)
    assert code == 0
    assert "upgraded base → " in out
    database = Path(get_settings().database_url.removeprefix("sqlite:///"))
    assert database.is_file()
    code, out, _ = run(["db", "current"], capsys)
    assert code == 0
    assert "up to date" in out
    code, out, _ = run(["db", "downgrade", "base"], capsys)
    assert code == 0
    code, out, _ = run(["db", "current"], capsys)
    assert "run `harmony db upgrade`" in out


def test_prune_refuses_a_database_behind(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["db", "prune"], capsys)
    assert code == 1
    assert "run `harmony db upgrade`" in err
    assert err.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "HARMONY_DATABASE_URL is not a database URL"),
        ("mysql://root@127.0.0.1/x", "Harmony supports sqlite and postgresql"),
        ("postgresql://postgres@127.0.0.1:1/x", "cannot reach the database"),
    ],
)
def test_bad_database_url_is_one_line_exit_1(
    url: str, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARMONY_DATABASE_URL", url)
    code, _, err = run(["db", "current"], capsys)
    assert code == 1
    assert expected in err
    assert err.strip().count("\n") == 0
    assert "Traceback" not in err


def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARMONY_RETENTION_DAYS", "-3")
    code, _, err = run(["db", "current"], capsys)
    assert code == 1
    assert "HARMONY_RETENTION_DAYS" in err


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARMONY_API_TOKENS", "alpha, beta")
    monkeypatch.setenv("HARMONY_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("HARMONY_LOG_FORMAT", "json")
    settings = get_settings()
    assert [token.get_secret_value() for token in settings.api_tokens] == ["alpha", "beta"]
    assert settings.redis_url == "redis://127.0.0.1:6379/3"
    assert settings.log_format == "json"
    assert get_settings() is settings


def test_local_defaults_follow_the_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HARMONY_DATABASE_URL")
    monkeypatch.delenv("HARMONY_MODEL_DIR")
    monkeypatch.setenv("HARMONY_DATA_DIR", str(tmp_path))
    settings = get_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'harmony.db'}"
    assert settings.model_dir == tmp_path / "models"


def test_operators_of_other_namespaces_elect_their_leaders_apart() -> None:
    from controller.cli.operator import default_lease_name

    assert default_lease_name([]) == "harmony-operator"
    gpu = default_lease_name(["gpu-a", "gpu-b"])
    assert gpu == default_lease_name(["gpu-b", "gpu-a", "gpu-a"])  # replicas of one set
    assert gpu.startswith("harmony-operator-") and len(gpu) <= 63
    assert gpu != default_lease_name(["gpu-a"]) != default_lease_name([])
