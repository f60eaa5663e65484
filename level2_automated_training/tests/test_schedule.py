"""`level2 schedule`'s local Prefect server: its UI is told the right API port; it stops when asked.
And the one line a scheduled run logs about what it registered."""

from level2.flows import outcome
from taxi.pipeline.prefect_server import local_prefect_server
from taxi.smoke import call_json, free_port, port_in_use


def test_local_prefect_server_points_its_ui_at_its_own_port(tmp_path):
    port = free_port()
    with local_prefect_server(port, tmp_path / ".prefect") as api_url:
        assert api_url == f"http://127.0.0.1:{port}/api"
        status, ui_settings = call_json(f"http://127.0.0.1:{port}/ui-settings", timeout=10)
        assert status == 200
        assert ui_settings["api_url"] == api_url  # not Prefect's default port 4200
    assert not port_in_use(port)  # stopped, by its PID
    assert (tmp_path / ".prefect" / "server.log").exists()


def test_a_run_says_whether_it_registered_a_new_version():
    v1 = {"name": "trip-duration", "version": 1, "new": True, "run_id": "a"}
    v2 = {**v1, "version": 2, "run_id": "b"}
    assert outcome(v2, v1, None) == "registered: trip-duration version 2"
    assert outcome(v1, None, None) == "registered: trip-duration version 1"
    assert outcome(v1, v1, "1") == "no new version (pipeline up to date); production is version 1"
    again = {**v1, "new": False}
    assert outcome(again, v2, "2") == "no new version (the model trained is already version 1); production is version 2"
    assert outcome(v1, v1, None) == "no new version (pipeline up to date); no version is in production yet"
