"""server/metrics.py: counts shared through Redis by several processes, exposed by prometheus_client; the output
read back with prometheus_client's own parsers (the text format and OpenMetrics)."""

import pytest
import server_support
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from gamma_detect.server.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, METRICS, Metrics
from gamma_detect.server.redisconn import connect


@pytest.fixture
def shared():
    """Two Metrics as two processes would hold them (one Redis hash), and the connection."""
    server_support.delete_keys()
    connection = connect(server_support.redis_url())
    key = f"{server_support.PREFIX}:metrics-test"
    processes = [Metrics(lambda: connection, key, flush_interval=60) for _ in range(2)]
    yield processes, connection
    for metrics in processes:
        metrics.close()
    server_support.delete_keys()


def samples(text: str) -> dict:
    """{(sample name, sorted labels): value} from the text format, through the library's parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_exposition_parses_and_sums_every_process(shared):
    (api, worker), connection = shared
    odd = 'a "quoted"\\ path\nwith a newline'   # escaping is the library's
    api.inc("gamma_http_requests_total", {"endpoint": odd, "method": "GET", "status": 404})
    worker.inc("gamma_http_requests_total", {"endpoint": odd, "method": "GET", "status": 404})
    worker.inc("gamma_jobs_total", {"kind": "analyze", "outcome": "finished"}, 3)
    for value in (1, 4, 4, 100):   # 100: above every bound, only in +Inf
        (api if value < 4 else worker).observe("gamma_batch_size", value, buckets=BATCH_BUCKETS)
    api.observe("gamma_inference_seconds", 0.3)
    worker.flush()   # the other process's counts reach Redis; render flushes its own

    body, content_type = api.render(connection, {"gamma_queue_depth": [({"queue": "inference"}, 7)],
                                                 "gamma_workers_alive": [({}, 2)]})
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {name: family.type for name, family in families.items()} == \
           {name.removesuffix("_total"): METRICS[name].kind for name in METRICS}   # every family, typed
    got = samples(text)
    assert got[("gamma_http_requests_total", (("endpoint", odd), ("method", "GET"), ("status", "404")))] == 2
    assert got[("gamma_jobs_total", (("kind", "analyze"), ("outcome", "finished")))] == 3
    assert got[("gamma_queue_depth", (("queue", "inference"),))] == 7 and got[("gamma_workers_alive", ())] == 2

    buckets = {float(labels[0][1]): value for (name, labels), value in got.items() if name == "gamma_batch_size_bucket"}
    assert sorted(buckets) == [*map(float, BATCH_BUCKETS), float("inf")]   # every bound, cumulative
    assert [buckets[b] for b in (1, 2, 3, 4, 64, float("inf"))] == [1, 1, 1, 3, 3, 4]
    assert got[("gamma_batch_size_count", ())] == 4 and got[("gamma_batch_size_sum", ())] == 109
    latency = {float(labels[0][1]): v for (name, labels), v in got.items() if name == "gamma_inference_seconds_bucket"}
    assert latency[0.25] == 0 and latency[0.5] == 1 and len(latency) == len(LATENCY_BUCKETS) + 1
    assert "gamma_job_queue_seconds_count" not in {name for name, _ in got}   # nothing observed: no series


def test_a_scraper_asking_for_openmetrics_gets_it(shared):
    (api, _), connection = shared
    api.inc("gamma_feedback_total", {"label": "ai"})
    body, content_type = api.render(connection, {}, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    family = next(f for f in openmetrics_families(body.decode()) if f.name == "gamma_feedback")
    assert family.type == "counter" and [(s.labels, s.value) for s in family.samples] == [({"label": "ai"}, 1)]


def test_fields_of_another_layout_are_left_out(shared):
    (api, _), connection = shared
    # 0.3.0 wrote `name{labels}` fields: a deployment upgraded in place leaves them in the hash.
    connection.hset(api.hash_key, mapping={'gamma_feedback_total{label="ai"}': 5, "[1, 2]": 1, '["nope", {}]': 1})
    api.inc("gamma_feedback_total", {"label": "real"})
    got = samples(api.render(connection, {})[0].decode())
    assert [key for key in got if key[0] == "gamma_feedback_total"] == [("gamma_feedback_total", (("label", "real"),))]


def test_an_undeclared_metric_or_label_is_refused_at_once(shared):
    (api, _), _ = shared
    with pytest.raises(KeyError):
        api.inc("gamma_made_up_total")
    with pytest.raises(ValueError, match="takes the labels"):
        api.inc("gamma_feedback_total", {"label": "ai", "extra": "x"})
    with pytest.raises(ValueError, match="buckets"):
        api.observe("gamma_batch_size", 3, buckets=LATENCY_BUCKETS)
