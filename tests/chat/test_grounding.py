"""Answer checks: citations must name given sources; links only to cited sources."""

import pytest

from chat.grounding import LinkFilter, answer_check, links_restrict

EVIL = "http://attacker.example/steal?x=1"


def test_citations_of_sources_not_given_are_removed_and_counted():
    checked = answer_check(
        "Leave is 27 days [1]. Travel is booked ahead [2, 7]. Bonus [9][3].",
        sources=3,
        urls_by_source={},
    )

    assert checked.text == "Leave is 27 days [1]. Travel is booked ahead [2]. Bonus [3]."
    assert checked.cited == (1, 2, 3)
    assert checked.citations_dropped == 2


def test_citation_ranges_and_repeats_are_read_and_kept_once():
    checked = answer_check("See [1-3] and [2, 2].", sources=4, urls_by_source={})

    assert checked.text == "See [1][2][3] and [2]."
    assert checked.cited == (1, 2, 3)
    assert checked.citations_dropped == 0


def test_an_answer_citing_nothing_valid_cites_nothing():
    checked = answer_check("I think so [5].", sources=2, urls_by_source={})

    assert (checked.text, checked.cited, checked.citations_dropped) == ("I think so.", (), 1)


def test_links_images_and_bare_addresses_outside_the_cited_sources_are_removed():
    text = (
        f"Click [here]({EVIL}) or visit {EVIL}. ![logo](http://attacker.example/p.png) "
        f'<img src="{EVIL}"> The policy page is https://intranet.example/leave [1]. '
        "The travel page https://intranet.example/travel was not cited."
    )
    checked = answer_check(
        text,
        sources=2,
        urls_by_source={1: "https://intranet.example/leave", 2: "https://intranet.example/travel"},
    )

    assert "attacker.example" not in checked.text
    assert "https://intranet.example/leave" in checked.text
    assert "intranet.example/travel" not in checked.text
    assert "Click here or visit [link removed]." in checked.text
    assert checked.links_removed == 5


def test_a_markdown_link_to_a_cited_source_is_kept_whole():
    text, removed = links_restrict(
        "See [the leave policy](https://intranet.example/leave).",
        allowed={"https://intranet.example/leave"},
    )

    assert (text, removed) == ("See [the leave policy](https://intranet.example/leave).", 0)


def test_a_streamed_address_is_never_let_through_however_it_is_split():
    answer = f"Ignore that. Go to {EVIL} now, or www.attacker.example today."
    for size in (1, 2, 3, 7, 11):
        stream = LinkFilter(allowed=set())
        shown = "".join(stream.feed(answer[i : i + size]) for i in range(0, len(answer), size))
        shown += stream.finish()

        assert "attacker" not in shown, size
        assert shown.startswith("Ignore that. Go to [link removed] now")


@pytest.mark.parametrize(
    "hostile",
    [
        "Details at evil.example/x?token=1",
        "Details at evil.com.",
        "Write to mailto:boss@evil.example",
        "Call tel:+15550100",
        "<svg onload=\"fetch('//evil.example')\">",
        '<form action="https://evil.example"><input name=p></form>',
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        '<b onmouseover="alert(1)">hover</b>',
        "<object data=x></object><embed src=x><style>*{}</style><base href=//x>",
    ],
)
def test_scheme_less_addresses_mailto_and_active_tags_are_removed(hostile):
    text, removed = links_restrict(hostile, allowed=set())
    assert removed >= 1
    for word in ("evil", "mailto", "tel:", "<svg", "<form", "<meta", "onmouseover", "<object"):
        assert word not in text.lower(), (hostile, text)


def test_ordinary_words_file_names_and_mail_addresses_stay():
    text = "See settings.py, node.js and version 2.0, e.g. this; mail hr@company.com."
    assert links_restrict(text, allowed=set()) == (text, 0)
