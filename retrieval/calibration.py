"""Label-free calibration of hybrid search, per collection: a measurement for managers.

How much hybrid search should trust the vector ranking over the full-text one depends on the
documents: equal shares are right where both branches are about as good (SciFact), and wrong
where one is much weaker. No collection comes with labelled queries, so the collection
labels its own: pseudo-queries made from a sample of its passages, each answered by the
document it came from. Hybrid search runs them at each vector share from 0 to 1, and the
share whose rankings put the source documents highest (mean reciprocal rank of the top 10)
is stored and shown as the collection's calibrated share, beside the MRR@10 of the default
fusion (adaptive: each query's own share) on the same pseudo-queries. Search does not apply
it by itself: a manager sets the collection's share (admin) after weighing it, for example
with `manage.py evaluate --share` on labelled queries of their own.

A pseudo-query is the first words of one sentence of a passage, written as a question would
be. Its source passage does not count: the document must be found through its other
passages. A query made of a passage's own words finds that passage by full text almost
always (nDCG@10 0.98 against 0.67 by vectors on SciFact), which would tell every collection
to trust full text; through the document's other passages the words overlap more as a real
question's do, but not enough: on SciFact these pseudo-queries still rate 0.3 best where the
real test queries are best served by 0.5 (docs/benchmarks.md), which is why the share is not
applied by itself. A share other than the even split is reported only when it beats the
even split by more than TOLERANCE. Documents of a single passage give no pseudo-query: a
collection with fewer than MIN_QUERIES is not measured.

The sample and the sentences are drawn from a generator seeded by the collection's id, so
the same collection gives the same pseudo-queries each time it is calibrated.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass

from django.db.models import Count, Q
from django.utils import timezone

from documents.models import Chunk, Collection, Document
from retrieval.selectors import fusion_default, ranking
from retrieval.types import HYBRID, Filters, Fusion

# Pseudo-queries per calibration; fewer passages than this give fewer.
PSEUDO_QUERIES = 200
# A collection with fewer pseudo-queries keeps the default share: too few to measure.
MIN_QUERIES = 30
# The vector shares compared, from full text alone (0) to vectors alone (1).
SHARES = tuple(step / 10 for step in range(11))
# Documents ranked: a source document further down scores 0.
DEPTH = 10
# Calibrated again once its ready documents grew or shrank by this share.
RECALIBRATE_AFTER = 0.2
# MRR@10 by which a share must beat the even split (and every share nearer to it) to be
# taken: differences below this are the noise of a sample of pseudo-queries.
TOLERANCE = 0.01

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Words of three or more characters that start with a letter: short function words and bare
# numbers are not what a searcher remembers.
_WORD = re.compile(r"[^\W\d_][\w-]{2,}")
_SHORTEST_SENTENCE = 6  # words
_LONGEST_QUERY = 16  # words: a question's length, and full text stays fast


@dataclass(frozen=True)
class PseudoQuery:
    text: str
    passage: int  # its source, which does not count
    document: int  # the answer


@dataclass(frozen=True)
class Calibration:
    dense_weight: float
    pseudo_queries: int
    passages: int
    # Ready documents when measured: a change by RECALIBRATE_AFTER measures again.
    documents: int
    # Vector share -> mean reciprocal rank of the source documents at that share.
    mrr: dict[str, float]
    at: str
    # The same for the default fusion as search runs it where no share is set (for adaptive
    # fusion, each query's own share).
    default_mrr: float | None = None


def pseudo_query(text: str, rng: random.Random) -> str:
    """The words (see _WORD) of one sentence of `text`, in their order."""
    sentences = [s for s in _SENTENCE_END.split(text) if len(s.split()) >= _SHORTEST_SENTENCE]
    return " ".join(_WORD.findall(rng.choice(sentences or [text]))[:_LONGEST_QUERY])


def pseudo_queries(collection: Collection, passages: list[tuple[int, int]]) -> list[PseudoQuery]:
    """Pseudo-queries from a sample of these (passage id, document id) pairs of the
    collection, up to PSEUDO_QUERIES, from documents that have other passages."""
    per_document = Counter(document for _, document in passages)
    candidates = sorted(pair for pair in passages if per_document[pair[1]] > 1)
    rng = random.Random(collection.pk)  # noqa: S311 (reproducible sampling, not secrecy)
    sample = dict(rng.sample(candidates, min(PSEUDO_QUERIES, len(candidates))))
    texts = Chunk.objects.filter(pk__in=sample).order_by("pk").values_list("pk", "text")
    return [PseudoQuery(pseudo_query(text, rng), pk, sample[pk]) for pk, text in texts]


def _reciprocal_rank(query: PseudoQuery, collection: Collection, fusion: Fusion) -> float:
    # As the owner, who reads the whole collection: calibration sees what search sees.
    passages = ranking(
        user=collection.owner,
        query=query.text,
        k=DEPTH * 3,
        mode=HYBRID,
        filters=Filters(collections=(collection.pk,)),
        fusion=fusion,
        collapse=False,
    )
    documents = [p.document_id for p in passages if p.chunk_id != query.passage]
    ranked = list(dict.fromkeys(documents))[:DEPTH]
    return 1 / (ranked.index(query.document) + 1) if query.document in ranked else 0.0


def collection_calibrate(collection: Collection) -> Calibration | None:
    """Measure and store the collection's vector share; None (and nothing stored) when it
    gives too few pseudo-queries to measure, or none of them finds its document."""
    passages = list(
        Chunk.objects.filter(document__collection=collection).values_list("pk", "document_id")
    )
    queries = pseudo_queries(collection, passages)
    if len(queries) < MIN_QUERIES:
        return None

    def mean(fusion: Fusion) -> float:
        return sum(_reciprocal_rank(query, collection, fusion) for query in queries) / len(queries)

    mrr = {share: mean(fusion_default().at_share(share)) for share in SHARES}
    if not any(mrr.values()):
        # Nothing found at any share (an owner who may no longer read, say): no measurement.
        return None
    # The share nearest to an even split among those within TOLERANCE of the best.
    top = max(mrr.values())
    best = min(
        (share for share in SHARES if mrr[share] >= top - TOLERANCE),
        key=lambda share: (abs(share - 0.5), share),
    )
    calibration = Calibration(
        dense_weight=best,
        pseudo_queries=len(queries),
        passages=len(passages),
        documents=collection.documents.filter(status=Document.Status.READY).count(),
        mrr={f"{share:.1f}": round(value, 4) for share, value in mrr.items()},
        at=timezone.now().isoformat(),
        # Whatever share a manager set: the default is what an empty share gives.
        default_mrr=round(mean(dataclasses.replace(fusion_default(), by_collection=False)), 4),
    )
    Collection.objects.filter(pk=collection.pk).update(
        calibrated_dense_weight=best, calibration=asdict(calibration)
    )
    return calibration


def collections_stale() -> list[Collection]:
    """Collections never calibrated, or whose ready documents changed by RECALIBRATE_AFTER
    or more since."""
    ready = Count("documents", filter=Q(documents__status=Document.Status.READY))
    stale = []
    for collection in Collection.objects.annotate(ready=ready).filter(ready__gt=0):
        before = collection.calibration.get("documents")
        if before is None or abs(collection.ready - before) >= RECALIBRATE_AFTER * before:
            stale.append(collection)
    return stale
