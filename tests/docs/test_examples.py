"""Every example in README.md and docs/ runs, and prints what the page shows.

The reader, the runner and the comparison live in ``tools/update_examples.py`` (which also
rewrites the shown outputs from real runs): ``console`` blocks run each ``$ command`` and
compare its stdout with the lines shown after it; ``python`` blocks run on their own in a
fresh interpreter and compare with the ``text`` block after them, if any. Only trailing
spaces, the wall time and the free memory on ``method`` lines are normalised, and a shown
``...`` line stands for any lines. A block marked ``<!-- not run: REASON -->`` is skipped;
the list of skipped blocks is pinned below, so it cannot grow silently.
"""

import importlib.util
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("update_examples", ROOT / "tools" / "update_examples.py")
examples = importlib.util.module_from_spec(_spec)
sys.modules["update_examples"] = examples
_spec.loader.exec_module(examples)

BLOCKS = examples.all_blocks()
RUNNABLE = [block for block in BLOCKS if block.runnable]

#: (page, first line of the block) of every block shown but not run, with the reason on the page
SKIPPED = [
    ("docs/distributed.md", "$ hessian-rank run --dataset gaussian --n 100 --dim 64 --units 300,300 --K 3 "
                            "--method matrix-free --devices 4"),
    ("docs/distributed.md", "$ hessian-rank run --dataset gaussian --n 100 --dim 64 --units 700,700 --K 1 "
                            "--method matrix-free --coordinator node0:12345 --num-processes 2 --process-id 0"),
    ("docs/distributed.md", "$ srun --nodes 4 --ntasks-per-node 1 hessian-rank run --units 700,700 --K 1 "
                            "--method matrix-free --distributed"),
    ("docs/distributed.md", "$ srun --nodes 4 --ntasks-per-node 1 bash -c 'hessian-rank run --units 700,700 --K 1 "
                            "--method matrix-free --coordinator \"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | "
                            "head -1):12345\" --num-processes \"$SLURM_NTASKS\" --process-id \"$SLURM_PROCID\"'"),
    ("docs/guides/grids.md", "$ hessian-rank grid small.toml"),
    ("docs/guides/spectra.md", "$ hessian-rank spectrum --dataset gaussian --n 100 --dim 64 --units 40,40 --K 10 "
                               "--activation relu --method matrix-free"),
    ("docs/guides/sweeps.md", "$ python3 rank_vs_sample_size.py --units 10,10 --loss mse --dataset digits "
                              "--batch_size 10 --init glorot --dim 64 --K 10"),
    ("docs/guides/sweeps.md", "$ python3 rank_vs_width.py --loss mse --dataset digits --batch_size 10 --init glorot "
                              "--dim 16 --K 10 --widths 2:24:2"),
    ("docs/guides/training.md", "$ hessian-rank train --dataset FashionMNIST --n 100 --dim 16 --units 20,20 --K 10 "
                                "--loss mse --optimizer adam --lr 0.01 --steps 1000"),
    ("docs/guides/your-model.md", "$ hessian-rank run --dataset gaussian --n 100 --dim 64 --units 300,300 --K 3 "
                                  "--loss mse --method matrix-free --blocks layers"),
]


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _fashion_mnist_missing() -> bool:
    return not all((DEBIAN_FASHION / f).is_file() for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"))


@pytest.fixture(scope="module")
def ran(request):
    """Run the selected blocks, two at a time (each is its own process), once per module."""
    selected = [item.callspec.params["block"] for item in request.session.items
                if item.module.__name__ == __name__ and hasattr(item, "callspec") and "block" in item.callspec.params]
    todo = [block for block in selected if not _needs_missing_data(block)]
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        by_text = {}   # the same example on two pages (README and the site) runs once
        for block in todo:
            if _what_runs(block) not in by_text:
                by_text[_what_runs(block)] = pool.submit(examples.run_block, block)
        return {block.where: by_text[_what_runs(block)].result() for block in todo}


def _what_runs(block):
    # a console block's commands, not the outputs shown after them: two pages may show the same
    # command's output rounded differently (a gap of 13.0 and 13.1 decades), and each is compared
    # with the one real output
    if block.lang == "console":
        return block.lang, tuple(command.text for command in block.commands())
    return block.lang, tuple(block.body)


def _needs_missing_data(block) -> bool:
    # the end-to-end examples on real Fashion-MNIST run where Debian's files are (CI installs them);
    # the PyTorch examples where torch is installed (CI installs the [torch] extra)
    text = "\n".join(block.body)
    if os.environ.get("CI"):
        return False
    return (("--dataset FashionMNIST" in text and _fashion_mnist_missing())
            or ("import torch" in text or "torch, hessrank" in text) and importlib.util.find_spec("torch") is None)


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.where for block in RUNNABLE])
def test_example_runs_and_prints_what_is_shown(block, ran):
    if block.where not in ran:
        pytest.skip("Fashion-MNIST or PyTorch is not on this machine (CI installs both)")
    problems = examples.differences(block, ran[block.where])
    assert not problems, "\n".join(problems) + "\n(regenerate with: python3 tools/update_examples.py)"


def test_the_blocks_not_run_are_the_listed_ones(capsys):
    marked = [block for block in BLOCKS if block.skip is not None and block.lang in ("python", "console")]
    skipped = [(str(block.path.relative_to(ROOT)), block.first_line) for block in marked]
    with capsys.disabled():   # shown in the test output whatever the capture setting
        print(f"\nexamples shown but not run ({len(marked)}):")
        for (page, first), block in zip(skipped, marked):
            print(f"  {page}: {first[:70]}  (not run: {block.skip})")
    assert skipped == SKIPPED


def test_there_are_examples_to_run():
    assert sum(block.lang == "console" for block in RUNNABLE) >= 10
    assert sum(block.lang == "python" for block in RUNNABLE) >= 5


def test_commands_are_shown_only_in_console_blocks():
    # a `hessian-rank …` or `$ …` line elsewhere would escape the examples test
    inside = {(block.path, block.body_start + i) for block in BLOCKS if block.lang == "console"
              for i in range(len(block.body))}
    stray = []
    for page in examples.pages():
        fenced = {(b.path, b.body_start + i) for b in examples.read_blocks(page) for i in range(len(b.body))}
        for i, line in enumerate(page.read_text(encoding="utf-8").splitlines()):
            command_like = re.match(r"\s*(\$ |hessian-rank )", line)
            if command_like and (page, i) not in inside and ((page, i) in fenced or line.startswith("    ")):
                stray.append(f"{page.relative_to(ROOT)}:{i + 1}: {line.strip()[:80]}")
    assert not stray, "commands outside a console block:\n" + "\n".join(stray)


def test_every_page_with_a_mark_says_why():
    marks = [line for page in examples.pages() for line in page.read_text(encoding="utf-8").splitlines()
             if line.strip().startswith("<!-- not run")]
    assert all(examples.NOT_RUN.match(line.strip()) for line in marks), marks


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_test_command_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(readme) <= 250, f"README.md has {len(readme)} lines"
    first_two = [block for block in examples.read_blocks(ROOT / "README.md")][:2]
    assert [len([line for line in block.body if line.strip()]) for block in first_two] == [1, 1]
    main_job, tests = (block.first_line for block in first_two)
    assert main_job.endswith("&& hessian-rank run") and "pip install" in main_job
    assert "pytest" in tests and "pip install" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci, f"{tests!r} is not a line of .ci/run"
