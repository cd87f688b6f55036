"""The carrier webhooks' shared handling: here, how refused callbacks are logged."""

from __future__ import annotations

import logging

import httpx2


VOIPMS = '[providers.voip]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "adapter.hooks" and r.levelno == logging.WARNING]


def test_a_flood_of_forged_callbacks_is_refused_without_flooding_the_log(start_adapter, caplog):
    server = start_adapter(VOIPMS)
    with caplog.at_level(logging.WARNING, logger="adapter.hooks"), server.client() as http:
        answers = [http.get("/hooks/voip/inbound", params={"token": f"guess-{i}", "id": str(i)})
                   for i in range(50)]
    assert {answer.status_code for answer in answers} == {401}
    assert len(warnings(caplog)) == 1
    assert isinstance(answers[0], httpx2.Response) and answers[0].json()["message"]
