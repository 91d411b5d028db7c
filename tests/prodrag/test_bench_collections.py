"""The rules that derive bench/collections' judged queries, on small package files made here
(the tiny benchmark run in test_benchmarks_run fetches a real package for one collection)."""

import gzip

from bench.collections.build import perl_keywords, perl_questions, wordnet_gcide, wordnet_keywords

POD = """=head1 NAME

perlfaq9 - Web, Email and Networking

=head1 DESCRIPTION

This section deals with questions related to running web sites, sending and receiving
email as well as general networking, from the points of view of servers and clients.

=head2 How do I get a file's timestamp?

If you want to retrieve the time at which the file was last read, written, or had its
meta-data changed, use the C<-A>, C<-M> or C<-C> file test operators, or L<stat|perlfunc/stat>
with its C<< $mtime >> field. X<timestamp>The E<lt>file handleE<gt> works as well as a
name, and the answer is the same on every platform that Perl runs on today.

=begin html

<p>Nothing of this block is text of the manual page, and none of it is indexed.</p>

=end html

=head2 Why is this question asked twice?

Because two pages ask it, and a question that names two sections cannot judge either of
them: it is left out of the queries, though both sections stay in the collection.

=head2 Why is this question asked twice?

The second page's own answer to it, long enough to be a document of its own in the collection,
which needs twenty-five words or more.

=head2 Too short?

Four words.
"""


def test_perl_questions_are_headings_that_ask_about_one_section_only(tmp_path):
    pod = tmp_path / "usr/share/perl/5.36.0/pod/perlfaq9.pod"
    pod.parent.mkdir(parents=True)
    pod.write_text(POD)
    corpus, queries, qrels = perl_questions(tmp_path)
    assert len(corpus) == 4  # description, timestamp and both twice-asked answers
    assert {row["title"] for row in corpus.values()} == {"perlfaq9 - Web, Email and Networking"}
    (qid,) = queries
    assert queries[qid] == "How do I get a file's timestamp?"
    answer = corpus[next(iter(qrels[qid]))]["text"]
    assert "use the -A, -M or -C file test operators, or stat with its $mtime field." in answer
    assert "The <file handle> works" in answer
    assert "Nothing of this block" not in answer and "X<" not in answer
    assert not any("timestamp?" in row["text"] for row in corpus.values())
    keyword_corpus, keywords, keyword_qrels = perl_keywords(tmp_path)
    assert keyword_corpus == corpus and keyword_qrels == qrels
    assert keywords == {qid: "file's timestamp"}


def test_wordnet_queries_are_another_dictionarys_definition_whole_or_its_first_words(tmp_path):
    wordnet = tmp_path / "usr/share/wordnet/data.noun"
    wordnet.parent.mkdir(parents=True)
    wordnet.write_text(
        "  1 This software and database is being provided to you, the LICENSEE\n"
        "02129604 05 n 02 tiger 0 Panthera_tigris 0 000 | large feline of forests in Asia\n"
        "02121620 05 n 02 cat 0 true_cat 0 000 | feline mammal usually having thick soft fur\n"
        "02121808 05 n 01 cat 1 000 | a spiteful woman gossip\n"
    )
    gcide = tmp_path / "usr/share/dictd/gcide.dict.dz"
    gcide.parent.mkdir(parents=True)
    with gzip.open(gcide, "wt") as out:
        out.write(
            'Tiger \\Ti"ger\\, n. [F. tigre, L. tigris.] 1. A very large and powerful '
            "carnivore of Southern Asia, marked by tigerish stripes. Other "
            "senses follow.\n\n"
            "Cat \\Cat\\, n. A domesticated carnivore that nobody may ask for: two senses.\n\n"
        )
    corpus, queries, qrels = wordnet_gcide(tmp_path)
    keyword_corpus, keywords, keyword_qrels = wordnet_keywords(tmp_path)
    assert corpus == keyword_corpus and set(corpus) == {"wn02129604", "wn02121620", "wn02121808"}
    assert corpus["wn02129604"] == {
        "title": "tiger, Panthera tigris",
        "text": "large feline of forests in Asia",
    }
    # "cat" has two WordNet senses: no definition of it judges either.
    assert qrels == keyword_qrels == {"qwn02129604": {"wn02129604": 1}}
    assert queries["qwn02129604"] == (
        "A very large and powerful carnivore of Southern Asia, marked by stripes."
    )
    assert keywords["qwn02129604"] == "very large powerful carnivore Southern"
