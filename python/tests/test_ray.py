"""The Ray Data pipelines on a real two-node Ray cluster on this machine (started and stopped
here), compared byte for byte with the same jobs in one process."""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sigmalang as sl
from conftest import chat_records

ray = pytest.importorskip("ray")
import ray.data  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

import sigmalang.ray as slr  # noqa: E402

N = 4000


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 100 << 20},
    )
    c.add_node(num_cpus=1, object_store_memory=100 << 20)
    ray.init(address=c.address, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def table():
    records = chat_records(N, seed=11)
    return pa.table(
        {
            "id": pa.array(range(N), pa.int64()),
            "conversation": pa.array([f"conv-{(i * 7919) % 97}" for i in range(N)]),
            "text": pa.array(records),
        }
    )


def test_two_nodes_run_tasks(cluster, table):
    def _node(batch):  # nested: Ray ships it by value (the workers cannot import this file)
        node = ray.get_runtime_context().get_node_id()
        return pa.table({"node": pa.array([node] * batch.num_rows)})

    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    ds = ray.data.from_arrow(table).repartition(8)
    nodes = ds.map_batches(_node, batch_format="pyarrow", scheduling_strategy="SPREAD")
    got = {t for b in ray.get(nodes.to_arrow_refs()) for t in b.column("node").to_pylist()}
    assert len(got) == 2


def test_parquet_pipeline(cluster, table, tmp_path):
    ds = ray.data.from_arrow(table).repartition(6)
    cb = slr.train_codebook(ds, "text", sample_records=1500, level="fast")
    out = str(tmp_path / "parquet")
    slr.write_parquet(ds, out, "text", cb)

    files = slr._parquet_files(out)
    assert files
    for f in files:
        meta = pq.read_schema(f).metadata
        assert meta[sl.CODEBOOK_METADATA_KEY.encode()] == cb.id.encode()
        assert meta[slr.COLUMN_METADATA_KEY.encode()] == b"text"
    stored = pq.read_table(files).sort_by("id")
    # The payloads are those of one process coding the whole column on one thread.
    local = sl.compress_batch(table.column("text"), cb, threads=1)
    assert stored.column("text").to_pylist() == local.to_pylist()
    assert stored.column("conversation").equals(table.column("conversation"))

    back = slr.read_parquet(out, codebook=cb)
    decoded = pa.concat_tables(ray.get(back.to_arrow_refs())).sort_by("id")
    assert decoded.column("text").to_pylist() == table.column("text").to_pylist()

    with pytest.raises(sl.CodebookMismatchError):
        slr.read_parquet(out)  # the built-in codebook is not the one the files name

    # Payloads have no checksum of their own; the pages do. One flipped bit in the middle of a
    # file's payload column fails the page's CRC, and the pipeline's read fails instead of
    # decoding to wrong text.
    f = files[0]
    pf = pq.ParquetFile(f)
    chunk = pf.metadata.row_group(0).column(pf.schema_arrow.get_field_index("text"))
    data = bytearray(open(f, "rb").read())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0x10
    open(f, "wb").write(bytes(data))
    with pytest.raises(OSError, match="CRC checksum verification failed"):
        pq.read_table(f, page_checksum_verification=True)
    with pytest.raises(Exception, match="(?i)corrupt|checksum"):
        ray.get(slr.read_parquet(out, codebook=cb).to_arrow_refs())


def test_archive_pipeline(cluster, table, tmp_path):
    ds = ray.data.from_arrow(table).repartition(5)
    cb = sl.Codebook.train(table.column("text").to_pylist()[:1000], level="fast")
    distributed = tmp_path / "ray"
    local = tmp_path / "local"
    slr.write_archives(ds, str(distributed), "text", "conversation", "id", partitions=3,
                       codebook=cb)
    slr.write_archives_local(table, str(local), "text", "conversation", "id", partitions=3,
                             codebook=cb)
    names = sorted(os.listdir(distributed))
    assert names == sorted(os.listdir(local))
    assert names == ["manifest.parquet", "part-00000.sga", "part-00001.sga", "part-00002.sga"]
    for name in names:
        if name.endswith(".sga"):
            assert (distributed / name).read_bytes() == (local / name).read_bytes(), name
    assert pq.read_table(distributed / "manifest.parquet").equals(
        pq.read_table(local / "manifest.parquet"))

    found = slr.KeyedArchives(str(distributed), cb)
    assert len(found) == N
    texts = table.column("text").to_pylist()
    for i in (0, 1, 1234, N - 1):
        assert found.get(i) == texts[i].encode()
    # Every archive holds whole conversations, in id order.
    total = 0
    for name in names[1:]:
        r = sl.ArchiveReader(distributed / name, cb)
        total += len(r)
    assert total == N
