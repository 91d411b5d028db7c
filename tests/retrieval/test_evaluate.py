"""The evaluate command on a small BEIR-format dataset loaded with import_beir."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db


def evaluate(*args):
    out = StringIO()
    call_command("evaluate", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize("mode", ["dense", "fulltext", "hybrid"])
def test_json_output_is_one_object_with_the_documented_keys(dataset, mode):
    out = evaluate(str(dataset), "--collection", "mini", "--mode", mode, "--json")
    result = json.loads(out)
    fused = {"fusion"} if mode == "hybrid" else set()
    assert set(result) == {
        "dataset", "mode", "queries", "ndcg@10", "recall@100", "mrr@10", "latency_ms", "run",
        *fused,
    }  # fmt: skip
    assert (result["dataset"], result["mode"], result["queries"]) == (dataset.name, mode, 3)
    assert set(result["latency_ms"]) == {"p50", "p95"}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]
    # The vector ranking reaches every document (k=100), so recall is complete; full text
    # misses q3's vitamin text, which shares no word with the question.
    assert result["recall@100"] == pytest.approx(1.0 if mode != "fulltext" else 2.5 / 3, abs=1e-4)
    assert result["mrr@10"] >= 2 / 3


def test_metrics_are_trec_evals_for_a_known_ranking(dataset):
    """Under full text, q1 and q2 find their one relevant document first; of q3's two
    relevant documents, the insulin text ranks first and the vitamin text, which shares no
    word with the question, is not found: q3's nDCG@10 is 1 / (1 + 1/log2(3)), its recall 1/2."""
    result = json.loads(
        evaluate(str(dataset), "--collection", "mini", "--mode", "fulltext", "--json")
    )
    q3_ndcg = 1 / (1 + 1 / 1.584962500721156)
    assert result["ndcg@10"] == pytest.approx((1 + 1 + q3_ndcg) / 3, abs=1e-4)
    assert result["recall@100"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)
    assert result["mrr@10"] == pytest.approx(1.0)


def test_hybrid_reports_the_vector_share_it_used_and_where_it_came_from(dataset):
    """Each query's own share until a manager sets one (a calibrated share is reported beside
    it, not used); --share for one run over both."""
    from documents.models import Collection

    def fusion(*extra):
        args = (str(dataset), "--collection", "mini", "--mode", "hybrid", "--json", *extra)
        used = json.loads(evaluate(*args))["fusion"]
        shares = used.pop("shares_used")
        assert shares["p10"] <= shares["p50"] <= shares["p90"]
        if used["dense_share"] is not None:  # a fixed share is every query's
            assert shares == dict.fromkeys(("p10", "p50", "p90"), used["dense_share"])
        return used

    default = {"method": "adaptive", "dense_share": None, "source": "each query's own"}
    assert fusion() == default | {"calibrated_share": None}
    Collection.objects.filter(name="mini").update(calibrated_dense_weight=0.7)
    assert fusion() == default | {"calibrated_share": 0.7}
    Collection.objects.filter(name="mini").update(fusion_dense_weight=0.2)
    assert fusion() == default | {
        "dense_share": 0.2,
        "source": "set by hand",
        "calibrated_share": 0.7,
    }
    assert fusion("--share", "0.9") == default | {
        "dense_share": 0.9, "source": "this run", "calibrated_share": 0.7,
    }  # fmt: skip
    with pytest.raises(CommandError, match="--share must be between 0 and 1"):
        fusion("--share", "1.5")


def test_text_output_and_refusals(dataset, tmp_path_factory):
    out = evaluate(str(dataset), "--collection", "mini", "--mode", "hybrid", "--limit", "2")
    assert f"{dataset.name} (2 queries), mode hybrid:" in out and "nDCG@10" in out
    assert "fusion     adaptive, vector share per query (each query's own)" in out
    assert "shares used by the queries' best passages: median 0." in out
    with pytest.raises(CommandError, match="No collection named 'nope'"):
        evaluate(str(dataset), "--collection", "nope")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(CommandError, match=r"queries\.jsonl does not exist"):
        evaluate(str(empty), "--collection", "mini")
