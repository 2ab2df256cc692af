# Fresh clone -> `make demo` or `make test`. Both create .venv, install the CPU build of
# torch first (so pip never pulls a multi-GB CUDA build by accident), then ctrlgym.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= dev,torchrl,traffic,mixup,benchmarks,ray,rllib,sionna,tune,docs
PY := $(VENV)/bin/python

.PHONY: setup demo docs docs-serve results help test test-fast test-integration lint typecheck test-slow bench bench-sumo bench-contention bench-twin calibrate-twin report-traffic report-resco report-benchmark gpu-check bench-mixup report-mixup bench-beamforming bench-scale report-beamforming check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

demo: setup  ## train PPO on MultiClassQueue (3 seeds), evaluate against baselines, write an HTML report
	$(VENV)/bin/ctrlgym demo --output-dir runs/demo

test: setup lint  ## what CI runs: lint, then the fast and integration tiers (long runs excluded; <= 15 min on 2 cores)
	$(PY) -m pytest --durations=10

test-fast: setup  ## the inner loop: everything but integration and slow tests (<= 3 min on 2 cores)
	$(PY) -m pytest -m "not slow and not integration" --durations=10

test-integration: setup  ## subprocesses, wheel build, demo, Ray/RLlib, kill-and-resume
	$(PY) -m pytest -m "integration and not slow"

lint: setup typecheck  ## ruff check, ruff format --check and mypy: zero findings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy reads the package as it installs: envs/, agents/, solvers/ are ctrlgym.envs, ... (package-dir),
# so it checks a tree of links laid out that way.
typecheck: setup  ## mypy over ctrlgym/, envs/, agents/, solvers/ (as the package ctrlgym)
	rm -rf build/typecheck && mkdir -p build/typecheck/ctrlgym
	for path in ctrlgym/*; do ln -s "$$PWD/$$path" build/typecheck/ctrlgym/; done
	for folder in envs agents solvers configs; do ln -s "$$PWD/$$folder" build/typecheck/ctrlgym/$$folder; done
	cd build/typecheck && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml -p ctrlgym

test-slow: setup  ## only the long runs marked @pytest.mark.slow
	$(PY) -m pytest -m slow

bench: setup  ## fast-slow env steps/s: native batch (eager and compile=True) vs a hand-vectorised numpy batch of each family (and SyncVectorEnv), quiet and busy
	$(PY) benchmarks/bench_vector.py

bench-solvers: setup  ## exact DP vs quantecon, pymdptoolbox and mdpsolver: the factored queue and the same flat matrices (random 10k-1M, queue 119k)
	$(PY) benchmarks/bench_solvers.py
	$(PY) benchmarks/bench_solvers_flat.py

bench-sumo: setup  ## TrafficSignalEnv vs sumo-rl vs SUMO alone, generated 4x4 grid and sumo-rl's 4x4-Lucas net
	$(PY) benchmarks/bench_sumo.py

bench-twin: setup  ## the torch traffic twin vs the SUMO env: intersection-decisions/s
	$(PY) benchmarks/bench_twin.py

calibrate-twin: setup  ## the twin vs SUMO on the 4x4 grid: queue, waiting, throughput side by side
	$(PY) benchmarks/calibrate_twin.py

TRAFFIC_RUNS = nash_dqn_grid4x4 idqn_grid4x4 nash_dqn_grid4x4_high idqn_grid4x4_high
report-traffic: setup  ## Nash DQN vs IDQN vs classic baselines on the 4x4 SUMO grid (trained on the twin; ~35 min on 2 cores)
	for run in $(TRAFFIC_RUNS); do \
	  resume=; [ -f runs/$$run/config.yaml ] && resume=--resume; \
	  $(VENV)/bin/ctrlgym train configs/traffic/$$run.yaml $$resume || exit 1; \
	  $(VENV)/bin/ctrlgym evaluate configs/traffic/$$run.yaml --env TrafficSignalEnv-v0 || exit 1; \
	done
	$(VENV)/bin/ctrlgym report $(addprefix runs/,$(TRAFFIC_RUNS)) -o reports/traffic_nash_dqn

report-resco: setup  ## every classic controller on RESCO's 8 maps, 5 seeds, full episodes on SUMO (resumable; ~25 min on 2 cores)
	$(VENV)/bin/ctrlgym evaluate configs/traffic/resco_baselines.yaml
	$(VENV)/bin/ctrlgym report configs/traffic/resco_baselines.yaml -o reports/resco_baselines

BENCHMARK_MAPS ?= grid4x4 arterial4x4 cologne1 cologne3 cologne8 ingolstadt1 ingolstadt7 ingolstadt21
# the agents' configs (shipped) and the ablations' (experiments/, repository only)
BENCHMARK_CONFIGS = $(foreach map,$(BENCHMARK_MAPS),$(addprefix configs/traffic/benchmark/$(map)_,$(addsuffix .yaml,$(BENCHMARK_AGENTS)))) $(addprefix experiments/traffic/,$(addsuffix .yaml,$(BENCHMARK_ABLATIONS)))
# EXECUTOR=ray: every seed a Ray task (RAY_ADDRESS=... joins a cluster)
EXECUTOR ?= local
BENCHMARK_AGENTS ?= nash_dqn idqn nash_dqn_sumo_finetune
BENCHMARK_ABLATIONS ?= grid4x4_nash_dqn_pressure_obs grid4x4_nash_dqn_queue_reward grid4x4_nash_dqn_sumo_finetune_4x grid4x4_nash_dqn_sumo_finetune_8x grid4x4_nash_dqn_sumo_finetune_16x grid4x4_nash_dqn_sumo_finetune_32x cologne1_nash_dqn_sumo_finetune_8x cologne3_nash_dqn_sumo_finetune_8x cologne8_nash_dqn_sumo_finetune_8x ingolstadt1_nash_dqn_sumo_finetune_8x ingolstadt21_nash_dqn_sumo_finetune_4x cologne8_nash_dqn_fp1 cologne8_nash_dqn_fp50 cologne8_nash_dqn_pairwise grid4x4_nash_dqn_2x_budget grid4x4_nash_dqn_3x_budget grid4x4_nash_dqn_2x_budget_sumo_finetune arterial4x4_nash_dqn_sumo_finetune_4x arterial4x4_nash_dqn_sumo_finetune_8x ingolstadt7_nash_dqn_2x_budget cologne8_nash_dqn_2x_budget cologne8_idqn_2x_budget ingolstadt7_idqn_2x_budget cologne8_nash_dqn_shared cologne8_idqn_shared cologne8_nash_dqn_neighbours_400m cologne8_idqn_neighbours_400m ingolstadt7_nash_dqn_neighbours_400m ingolstadt7_idqn_neighbours_400m grid4x4_nash_dqn_fp_prior0 arterial4x4_nash_dqn_fp_prior0 cologne8_nash_dqn_fp_prior0 ingolstadt7_nash_dqn_fp_prior0
report-benchmark: setup  ## Nash DQN vs IDQN vs every classic controller (ours and RESCO's) on RESCO's 8 maps, 5 seeds, on SUMO, with ablations and RESCO's published results (resumable: runs what is missing; EXECUTOR=ray for a cluster)
	$(VENV)/bin/ctrlgym evaluate configs/traffic/benchmark/classics.yaml --executor $(EXECUTOR)
	$(VENV)/bin/ctrlgym evaluate configs/traffic/benchmark/classics_twin.yaml --executor $(EXECUTOR)
	for cfg in $(BENCHMARK_CONFIGS); do \
	  out=$$(grep '^output_dir:' $$cfg | cut -d' ' -f2); \
	  resume=; [ -f $$out/config.yaml ] && resume=--resume; \
	  $(VENV)/bin/ctrlgym train $$cfg $$resume --executor $(EXECUTOR) || exit 1; \
	  $(VENV)/bin/ctrlgym evaluate $$cfg --env TrafficSignalEnv-v0 --executor $(EXECUTOR) || exit 1; \
	done
	$(VENV)/bin/ctrlgym report --benchmark --reference nash_dqn configs/traffic/benchmark/classics.yaml $(BENCHMARK_CONFIGS) configs/traffic/benchmark/classics_twin.yaml -o reports/traffic_benchmark

gpu-check: setup  ## the prepared GPU run: CUDA tests, no-sync over every env, benchmarks at GPU sizes (dry run without CUDA; STEPS="twin tests" runs some)
	PY=$(PY) bash benchmarks/gpu_check.sh $(STEPS)

bench-contention: setup  ## every family's throughput quiet and beside one busy process (ctrlgym's threads vs torch's default)
	$(PY) benchmarks/bench_contention.py

bench-mixup: setup  ## the vectorised classifier population vs the same classifiers one by one
	$(PY) benchmarks/bench_mixup.py

report-mixup: setup  ## the regimes table (fixed mixes x label noise), PPO vs every fixed mix and schedule on noisy digits, on unknown noise (half clean, half noisy; PPO and DQN, 10, 4 and 2 stages) and on clean digits (5 seeds each)
	$(VENV)/bin/ctrlgym evaluate configs/mixup/regimes.yaml
	for run in ppo_noisy_digits ppo_unknown_noise_digits ppo_unknown_noise_digits_10_stages dqn_unknown_noise_digits_10_stages dqn_unknown_noise_digits_10_stages_4x dqn_unknown_noise_digits_10_stages_val_loss dqn_unknown_noise_digits_10_stages_acc_and_loss dqn_unknown_noise_digits_4_stages dqn_unknown_noise_digits_4_stages_2x dqn_unknown_noise_digits_4_stages_2x_lr_decay dqn_unknown_noise_digits_2_stages ppo_unknown_noise_digits_4_stages ppo_digits; do \
	  cfg=configs/mixup/$$run.yaml; [ -f $$cfg ] || cfg=experiments/mixup/$$run.yaml; \
	  out=$$(grep '^output_dir:' $$cfg | cut -d' ' -f2); \
	  resume=; [ -f $$out/config.yaml ] && resume=--resume; \
	  $(VENV)/bin/ctrlgym train $$cfg $$resume || exit 1; \
	  $(VENV)/bin/ctrlgym evaluate $$cfg || exit 1; \
	done
	$(VENV)/bin/ctrlgym report runs/mixup_regimes runs/ppo_mixup_noisy_digits runs/ppo_mixup_unknown_noise_digits runs/ppo_mixup_unknown_noise_digits_10_stages runs/dqn_mixup_unknown_noise_digits_10_stages runs/dqn_mixup_unknown_noise_digits_10_stages_4x runs/dqn_mixup_unknown_noise_digits_10_stages_val_loss runs/dqn_mixup_unknown_noise_digits_10_stages_acc_and_loss runs/dqn_mixup_unknown_noise_digits_4_stages runs/dqn_mixup_unknown_noise_digits_4_stages_2x runs/dqn_mixup_unknown_noise_digits_4_stages_2x_lr_decay runs/dqn_mixup_unknown_noise_digits_2_stages runs/ppo_mixup_unknown_noise_digits_4_stages runs/ppo_mixup_digits -o reports/mixup

bench-beamforming: setup  ## the batched beamforming env vs a numpy batch of the same model, quiet and busy
	$(PY) benchmarks/bench_beamforming.py

bench-scale: setup  ## the largest twin batch and flat MDP this machine's memory holds, run and timed (uses most of the memory)
	$(PY) benchmarks/bench_scale.py

BEAMFORMING_RUNS = cnn_rate_loss cnn_mse ppo_rzf sac_rzf ppo_precoder
report-beamforming: setup  ## sum rate vs user speed: CNN predictors (rate / MSE loss), PPO, SAC, MRT/ZF/RZF on stale, blind-Wiener, genie-Wiener, perfect CSI
	for run in $(BEAMFORMING_RUNS); do \
	  resume=; [ -f runs/beamforming_$$run/config.yaml ] && resume=--resume; \
	  $(VENV)/bin/ctrlgym train configs/beamforming/$$run.yaml $$resume || exit 1; \
	  $(VENV)/bin/ctrlgym evaluate configs/beamforming/$$run.yaml || exit 1; \
	done
	$(VENV)/bin/ctrlgym report $(addprefix runs/beamforming_,$(BEAMFORMING_RUNS)) -o reports/beamforming

docs: setup  ## the documentation site into site/ (pages generated from the code and benchmarks/results; mkdocs build --strict)
	$(PY) docs/generate.py
	$(PY) -m mkdocs build --strict

docs-serve: docs  ## serve the site at http://127.0.0.1:8000 while you edit
	$(PY) -m mkdocs serve

results: setup  ## store the reports' JSON in benchmarks/results/reports/ and regenerate the results pages and the README's figures
	mkdir -p benchmarks/results/reports
	for name in traffic_benchmark resco_baselines traffic_nash_dqn mixup beamforming; do \
	  [ -f reports/$$name.json ] && cp reports/$$name.json benchmarks/results/reports/ || true; \
	done
	[ -f runs/demo/report.json ] && cp runs/demo/report.json benchmarks/results/reports/demo.json || true
	$(PY) docs/generate.py --readme

help:  ## this list
	@grep -E '^[a-z][a-z-]*:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 20

check: setup  ## the conformance checkers on every registered env
	$(VENV)/bin/ctrlgym list
	$(VENV)/bin/ctrlgym check ctrlgym/MultiClassQueue-v0

clean:
	rm -rf $(VENV) runs reports *.egg-info
