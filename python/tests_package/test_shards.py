"""sgdwalk.run_shard and sgdwalk.merge: shards run from Python (or the CLI, in any mix) merge into
the results.h5 of the single run, bit for bit, as `sgdwalk run --shard K/N` and `sgdwalk merge`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import sgdwalk
from conftest import (SMALL_CONFIG, assert_same_datasets, assert_same_results_files, cli_run,
                      h5_contents)

#: Long enough to interrupt: 20000 steps in segments of 500, each followed by a 100 ms pause
#: (the test hook SGDWALK_TEST_SEGMENT_DELAY_MS), so at least 4 s for a shard on any machine; the
#: test stops it after 1 s.
LONG_CONFIG = SMALL_CONFIG.replace("steps = 3000", "steps = 20000")


def test_shards_of_different_builds_merge_with_a_warning(tmp_path):
    # A walker's bits are guaranteed per build: merge says when the shards' builds differ.
    shards = [sgdwalk.run_shard(SMALL_CONFIG, (k, 2), out=tmp_path / f"shard-{k}", threads=1,
                                progress=False) for k in (0, 1)]
    summary_path = shards[1] / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["sgdwalk"]["git_commit"] = "0123456789ab"
    summary_path.write_text(json.dumps(summary))
    with pytest.warns(sgdwalk.RunWarning, match="computed by 2 different sgdwalk builds"):
        merged = sgdwalk.merge(tmp_path / "merged", shards)
    assert "(0123456789ab)" in merged.summary["merged_from"][1]["sgdwalk"]


def test_python_shards_merge_into_the_single_run(cli, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_CONFIG)
    single = cli_run(cli, config, tmp_path / "single")
    # Any order, other thread counts per shard; 4 parts of 1800 walkers cross variant boundaries.
    shards = [sgdwalk.run_shard(config, (k, 4), out=tmp_path / f"shard-{k}", threads=1 + k % 2,
                                progress=False) for k in (3, 1, 0, 2)]
    for directory in shards:
        assert (directory / "tallies.bin").is_file() and not (directory / "results.h5").exists()
    merged = sgdwalk.merge(tmp_path / "merged", shards)
    assert merged.complete
    assert_same_results_files(single / "results.h5", tmp_path / "merged" / "results.h5")
    assert_same_datasets(h5_contents(single / "results.h5")[0], merged.datasets)
    assert merged.summary["merged_from"] and len(merged.summary["merged_from"]) == 4

    # The CLI merges Python's shards, and Python merges the CLI's.
    subprocess.run([cli, "merge", str(tmp_path / "cli-merged"), *map(str, shards), "--quiet"],
                   check=True)
    assert_same_results_files(single / "results.h5", tmp_path / "cli-merged" / "results.h5")
    cli_shards = []
    for k in range(3):
        cli_shards.append(tmp_path / f"cli-shard-{k}")
        subprocess.run([cli, "run", str(config), "--shard", f"{k}/3", "--out", str(cli_shards[-1]),
                        "--quiet"], check=True)
    from_cli = sgdwalk.merge(tmp_path / "python-merged", cli_shards)
    assert_same_datasets(merged.datasets, from_cli.datasets)


def test_bad_shards_and_merges_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"shard = \(3, 3\) is out of range; allowed"):
        sgdwalk.run_shard(SMALL_CONFIG, (3, 3), out=tmp_path / "x", progress=False)
    with pytest.raises(TypeError, match="pair"):
        sgdwalk.run_shard(SMALL_CONFIG, "1/3", out=tmp_path / "x", progress=False)
    one = sgdwalk.run_shard(SMALL_CONFIG, (0, 2), out=tmp_path / "a", progress=False)
    with pytest.raises(sgdwalk.RunDirectoryError, match="missing"):
        sgdwalk.merge(tmp_path / "merged", [one])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "note.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="force=True"):
        sgdwalk.merge(tmp_path / "full", [one])
    with pytest.raises(TypeError, match="list of shard directories"):
        sgdwalk.merge(tmp_path / "merged", one)


def test_an_interrupted_shard_resumes_from_python_into_its_directory(cli, tmp_path):
    config = tmp_path / "long.toml"
    config.write_text(LONG_CONFIG)
    shard = tmp_path / "shard-0"
    env = {**os.environ, "SGDWALK_TEST_SEGMENT_DELAY_MS": "100"}
    process = subprocess.Popen([cli, "run", str(config), "--shard", "0/2", "--out", str(shard),
                                "--quiet", "--segment-steps", "500"], env=env)
    try:
        process.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        process.send_signal(2)
    assert process.wait(timeout=60) == 130, "the shard finished before it was interrupted"
    assert (shard / "checkpoint.bin").is_file() and not (shard / "tallies.bin").exists()

    # resume() finishes the shard and returns its directory, as run_shard does (a shard holds
    # tallies for merge, not Results); a finished shard is returned again without running.
    resumed = sgdwalk.resume(shard, threads=1, progress=False)
    assert resumed == shard
    assert (shard / "tallies.bin").is_file() and not (shard / "checkpoint.bin").exists()
    assert not (shard / "results.h5").exists()
    assert sgdwalk.resume(shard, progress=False) == shard

    other = sgdwalk.run_shard(config, (1, 2), out=tmp_path / "shard-1", progress=False)
    merged = sgdwalk.merge(tmp_path / "merged", [shard, other])
    single = cli_run(cli, config, tmp_path / "single")
    assert_same_results_files(single / "results.h5", tmp_path / "merged" / "results.h5")
    assert merged.complete
