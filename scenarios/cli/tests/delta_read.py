"""delta_read.py --engine ENGINE [--probe COLUMN=V1,V2,...] TARGET...

Reads Delta tables the way a user of ENGINE (deltalake, polars or duckdb) does, through the
table's log, and prints one JSON object summarising each read, for scenarios/cli/tests/
delta_engines.rs. A TARGET is a table directory, optionally `@VERSION` for time travel. Many
targets per process: the engines are slow to import.

Output: {"engine", "available": true, "reads": [one per target]} or {"engine", "available":
false, "missing": why}. A read is {"target", "row_count", "distinct_seq", "seq_min", "seq_max",
"seq_sum", "<COLUMN>_sum", "columns": [names in order], "types": {name: engine's own type name},
"probe": [rows whose COLUMN is one of the values, sorted, tally_seq left out]} or {"target",
"error"}: an engine's error is data (a test may expect one), never a crash of this script.

DuckDB's delta extension is loaded from the duckdb-extension-delta wheel by path, so nothing is
downloaded; rows are fetched through Arrow (DuckDB's fetchall of TIMESTAMPTZ needs pytz).
"""
import argparse
import glob
import json
import os
import sys


def read_deltalake(path, version):
    from deltalake import DeltaTable

    dt = DeltaTable(path) if version is None else DeltaTable(path, version=version)
    t = dt.to_pyarrow_table()
    return t, {f.name: str(f.type) for f in t.schema}


def read_polars(path, version):
    import polars as pl

    df = pl.read_delta(path) if version is None else pl.read_delta(path, version=version)
    return df.to_arrow(), {k: str(v) for k, v in df.schema.items()}


def duck_connect():
    import duckdb
    import duckdb_extension_delta as wheel

    pattern = os.path.join(os.path.dirname(wheel.__file__), "extensions", "*",
                           "delta.duckdb_extension")
    found = glob.glob(pattern)
    if not found:
        raise ImportError(f"no delta extension in the duckdb-extension-delta wheel ({pattern})")
    con = duckdb.connect()
    con.execute(f"LOAD '{found[0]}'")
    return con


def read_duckdb(path, version):
    con = duck_connect()
    if version is None:
        cur = con.execute("SELECT * FROM delta_scan(?)", [path])
    else:
        cur = con.execute("SELECT * FROM delta_scan(?, version => ?)", [path, version])
    types = {d[0]: str(d[1]) for d in cur.description}
    # to_arrow_table is the newer name; fetch_arrow_table is deprecated but all older ones have
    fetch = getattr(cur, "to_arrow_table", None) or cur.fetch_arrow_table
    return fetch(), types


READERS = {"deltalake": read_deltalake, "polars": read_polars, "duckdb": read_duckdb}
IMPORTS = {
    "deltalake": lambda: __import__("deltalake"),
    "polars": lambda: (__import__("polars"), __import__("deltalake")),
    "duckdb": duck_connect,
}


def jsonable(v):
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


def summarise(table, types, probe):
    import pyarrow.compute as pc

    out = {"row_count": table.num_rows, "columns": table.column_names, "types": types}
    if "tally_seq" in table.column_names:
        seq = table.column("tally_seq")
        out["distinct_seq"] = pc.count_distinct(seq).as_py()
        out["seq_min"] = pc.min(seq).as_py()
        out["seq_max"] = pc.max(seq).as_py()
        out["seq_sum"] = pc.sum(seq).as_py() or 0
    if probe:
        column, values = probe
        if column in table.column_names:
            out[f"{column}_sum"] = pc.sum(table.column(column)).as_py() or 0
            hit = table.filter(pc.is_in(table.column(column), value_set=pa_array(values)))
            rows = [{k: v for k, v in r.items() if k != "tally_seq"} for r in hit.to_pylist()]
            out["probe"] = jsonable(sorted(rows, key=lambda r: r[column]))
    return out


def pa_array(values):
    import pyarrow as pa

    return pa.array(values)


def read_one(engine, target, probe):
    path, _, version = target.partition("@")
    try:
        table, types = READERS[engine](path, int(version) if version else None)
        return {"target": target, **summarise(table, types, probe)}
    except BaseException as e:  # deltalake raises PanicException (a BaseException) on panics
        lines = " | ".join(str(e).strip().splitlines())
        return {"target": target, "error": f"{type(e).__name__}: {lines}"[:800]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=sorted(READERS), required=True)
    ap.add_argument("--probe", help="COLUMN=V1,V2: integer values of COLUMN to return rows of")
    ap.add_argument("targets", nargs="*")
    a = ap.parse_args()
    probe = None
    if a.probe:
        column, _, values = a.probe.partition("=")
        probe = (column, [int(v) for v in values.split(",") if v])
    try:
        IMPORTS[a.engine]()
        __import__("pyarrow")
    except Exception as e:  # ImportError, or DuckDB failing to load the extension
        print(json.dumps({"engine": a.engine, "available": False,
                          "missing": f"{type(e).__name__}: {e}"}))
        return
    reads = [read_one(a.engine, t, probe) for t in a.targets]
    print(json.dumps({"engine": a.engine, "available": True, "reads": reads}, default=str))


if __name__ == "__main__":
    main()
    # deltalake's Rust runtime may still own threads when the interpreter tears down, and then
    # the process aborts ("terminate called without an active exception", delta-rs #2184) after
    # printing a complete, correct result. The output is flushed here and teardown is skipped:
    # a read's failure is reported in the JSON, never by the exit status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
