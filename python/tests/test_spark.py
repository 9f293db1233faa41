"""The Spark recipe (sigmalang.spark) on a local Spark session with two cores, compared byte
for byte with the same job in one process. Skipped when pyspark is missing, unless
SIGMA_REQUIRE_SPARK=1 (CI sets it and installs pyspark)."""

import os
import sys

import pyarrow as pa
import pytest

import sigmalang as sl
from conftest import chat_records

if os.environ.get("SIGMA_REQUIRE_SPARK") == "1":
    import pyspark  # noqa: F401  (fails loudly where CI promised pyspark)
else:
    pytest.importorskip("pyspark")

from pyspark.sql import SparkSession  # noqa: E402

import sigmalang.spark as sls  # noqa: E402

N = 3000


@pytest.fixture(scope="module")
def spark():
    # The workers run this interpreter, which has pyarrow and sigmalang.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("sigmalang-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def rows():
    texts = chat_records(N, seed=5)
    return [(i, f"conv-{i % 37}", t) for i, t in enumerate(texts)]


def frame(spark, rows, partitions=3):
    df = spark.createDataFrame(rows, "id long, conversation string, text string")
    return df.repartition(partitions, "conversation")


def by_id(collected, column):
    return [r[column] for r in sorted(collected, key=lambda r: r["id"])]


def test_payloads_match_one_process(spark, rows, trained):
    texts = [r[2] for r in rows]
    expected = sl.compress_batch(texts, trained, threads=1)
    for partitions in (1, 3):
        out = sls.compress_dataframe(frame(spark, rows, partitions), "text", trained)
        assert out.schema["text"].metadata[sl.CODEBOOK_METADATA_KEY] == trained.id
        got = by_id(out.collect(), "text")
        assert [bytes(p) for p in got] == expected
    back = sls.decompress_dataframe(out, "text", trained)
    assert by_id(back.collect(), "text") == texts


def test_parquet_round_trip(spark, rows, trained, tmp_path):
    path = str(tmp_path / "logs-sgm")
    sls.write_parquet(frame(spark, rows), path, "text", trained)
    df = sls.read_parquet(spark, path, "text", trained)
    got = df.collect()
    assert by_id(got, "text") == [r[2] for r in rows]
    assert by_id(got, "conversation") == [r[1] for r in rows]
    # As binaries, and the payload column itself as stored.
    raw = sls.read_parquet(spark, path, "text", trained, as_str=False).collect()
    assert by_id(raw, "text") == [r[2].encode() for r in rows]
    import pyarrow.parquet as pq

    stored = pq.read_table(path).sort_by("id").column("text").to_pylist()
    assert stored == sl.compress_batch([r[2] for r in rows], trained, threads=1)


def test_wrong_codebook_refused(spark, rows, trained, tmp_path):
    path = str(tmp_path / "logs-sgm")
    sls.write_parquet(frame(spark, rows[:200]), path, "text", trained)
    with pytest.raises(sl.CodebookMismatchError):
        sls.read_parquet(spark, path, "text", sl.Codebook.default())
    plain = str(tmp_path / "plain")
    frame(spark, rows[:10]).write.parquet(plain)
    with pytest.raises(ValueError, match="sigmalang.codebook"):
        sls.read_parquet(spark, plain, "text", trained)
    with pytest.raises(ValueError, match="no column"):
        sls.compress_dataframe(frame(spark, rows[:10]), "body", trained)


def test_nulls_and_binary_column(spark, trained):
    rows = [(0, "a", b"hello"), (1, "a", None), (2, "b", "x\u00e9".encode())]
    df = spark.createDataFrame(rows, "id long, conversation string, text binary")
    out = sls.compress_dataframe(df, "text", trained)
    back = sls.decompress_dataframe(out, "text", trained, as_str=False).collect()
    assert [None if v is None else bytes(v) for v in by_id(back, "text")] == [r[2] for r in rows]
