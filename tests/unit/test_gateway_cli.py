"""``chargeledger gateway`` charge point management on the embedded database."""

import pytest

from chargeledger.settings import get_settings
from gateway.cli import main
from gateway.registry import ChargePointRegistry
from storage.db import make_engine


@pytest.fixture
def database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CHARGELEDGER_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_add_disable_and_list_charge_points(database, capsys):
    assert main(["add-charge-point", "CP-9", "--password", "pw-nine", "--scrypt-n", "1024"]) == 0
    assert "registered CP-9" in capsys.readouterr().out
    registry = ChargePointRegistry(make_engine(database))
    assert registry.authenticate("CP-9", "pw-nine")

    assert main(["add-charge-point", "CP-10", "--scrypt-n", "1024"]) == 0
    generated = capsys.readouterr().out.split("password: ")[1].strip()
    assert registry.authenticate("CP-10", generated)

    assert main(["disable-charge-point", "CP-9"]) == 0
    assert not registry.authenticate("CP-9", "pw-nine")
    assert main(["disable-charge-point", "CP-404"]) == 1
    capsys.readouterr()
    assert main(["list-charge-points"]) == 0
    assert capsys.readouterr().out.splitlines() == ["CP-10\tenabled", "CP-9\tdisabled"]


def test_a_charge_point_id_that_cannot_be_in_a_url_path_is_refused(database, capsys):
    assert main(["add-charge-point", "a/b", "--password", "x"]) == 2
    assert "invalid charge point id" in capsys.readouterr().err
