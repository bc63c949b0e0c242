"""`chargeledger services` finds the infra scripts and validates its arguments (no service needed)."""

import pytest

from chargeledger import services


def test_infra_scripts_are_found_next_to_the_package():
    for script in services.SCRIPTS.values():
        assert (services.INFRA_DIR / script).is_file()


def test_unknown_action_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        services.main(["restart"])
    assert exc.value.code == 2
    assert "invalid choice: 'restart'" in capsys.readouterr().err


def test_unknown_service_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        services.main(["start", "zookeeper"])
    assert exc.value.code == 2
    assert "invalid choice: 'zookeeper'" in capsys.readouterr().err


def test_bootstrap_list_is_split_into_host_and_port():
    assert services._split_servers("127.0.0.1:9092, localhost:19092") == [("127.0.0.1", 9092), ("localhost", 19092)]
