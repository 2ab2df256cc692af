"""A CNN at the transmitter that predicts the downlink channel from recent uplink estimates,
trained on the MSE of its prediction or on the sum rate of the precoder it feeds (arXiv 2202.07998)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ctrlgym.policies import CheckpointedAgent
from ctrlgym.seeding import initialisation_seed

if TYPE_CHECKING:
    from ctrlgym.envs.beamforming.env import BeamformingEnv

__all__ = ["ChannelPredictor", "ChannelPredictorNet", "LOSSES"]

LOSSES = ("mse", "rate")
START_FROM = ("wiener", "stale")  # the base prediction the net corrects


class ChannelPredictorNet(nn.Module):
    """Per user, a CNN over antennas × subcarriers whose input channels are the real and imaginary
    parts of the ``history`` estimates and their ages; a cell-wide context (features pooled over
    the cell's users, antennas and subcarriers, from which the net can read the Doppler) joins
    every position. It outputs complex weights ``w_h`` per position and predicts
    ``ĥ = b + Σ_h w_h y_h`` from a base prediction ``b``: the stale estimate ``y_0``, or the
    blind Wiener prediction (Doppler estimated from the same history,
    :func:`.precoding.blind_wiener_prediction`), so the net learns a correction to the classical
    predictor, and a gain per user ``g = exp(·) · (b + Σ_h w_h y_h)``: trained on the rate, a net
    that is unsure of a user's channel can shrink its prediction, which for RZF is a larger
    regularisation (robust precoding under CSI error). The last layers start at zero, so training
    starts from ``b`` with ``g = 1``."""

    def __init__(self, history: int, hidden: int = 32) -> None:
        super().__init__()
        self.history, self.hidden = history, hidden
        self.body = nn.Sequential(
            nn.Conv2d(3 * history, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU()
        )
        self.context = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(2 * hidden, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 2 * history, 1))
        self.log_gain = nn.Linear(2 * hidden, 1)  # per user: how far to trust the prediction (shrinks it when unsure)
        for layer in (self.head[-1], self.log_gain):
            assert isinstance(layer, (nn.Conv2d, nn.Linear)) and layer.bias is not None
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, estimates: torch.Tensor, ages: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """``estimates`` ``(B, history, K, M, S)`` complex, ``ages`` ``(B, history)`` (scaled), the base
        prediction ``(B, K, M, S)`` (default: the newest estimate) -> the predicted channel ``(B, K, M, S)``."""
        B, H, K, M, S = estimates.shape
        per_user = estimates.permute(0, 2, 1, 3, 4).reshape(B * K, H, M, S)
        age_maps = ages.repeat_interleave(K, 0)[:, :, None, None].expand(B * K, H, M, S)
        features = self.body(torch.cat([per_user.real, per_user.imag, age_maps], 1))
        pooled = features.mean((2, 3))  # (B·K, hidden) per user
        context = self.context(pooled.reshape(B, K, -1).mean(1)).repeat_interleave(K, 0)
        weights = self.head(torch.cat([features, context[:, :, None, None].expand_as(features)], 1))
        weights = torch.complex(weights[:, :H], weights[:, H:])
        start = per_user[:, 0] if base is None else base.reshape(B * K, M, S)
        gain = self.log_gain(torch.cat([pooled, context], 1)).exp()[:, :, None]  # (B·K, 1, 1), 1 at the start
        prediction = gain * (start + (weights * per_user).sum(1))
        return prediction.reshape(B, K, M, S)


class ChannelPredictor(CheckpointedAgent):
    """The CNN predictor as an agent of :class:`~ctrlgym.envs.beamforming.BeamformingEnv`
    (``action_mode="precoder"``): it predicts the channel at transmission and precodes on the
    prediction with RZF (``α = K σ²/P``) or ZF.

    ``loss="mse"`` fits ``E‖Ĥ − H‖²``; ``loss="rate"`` maximises the users' sum rate
    ``Σ_k log2(1 + SINR_k)`` of the precoder computed from ``Ĥ``, on the true channel ``H``
    (the paper's receiver-performance loss; gradients flow through the precoder's matrix inverse).
    Training data come from the env itself: each env step gives one minibatch of
    ``num_envs`` (observation, true channel) pairs and one Adam step. ``start_from="wiener"``
    (default) has the net correct the blind Wiener prediction (Doppler estimated from the same
    estimates: no genie), ``"stale"`` the newest estimate.

    Args:
        env: a :class:`~ctrlgym.envs.beamforming.BeamformingEnv` with ``action_mode="precoder"``.
        loss: ``"rate"`` (the sum rate its precoder yields on the true channel) or ``"mse"``.
        precoder: ``"rzf"`` or ``"zf"``, computed from the predicted channel.
        hidden: channels of the CNN's hidden layers.
        learning_rate: Adam's step size.
        start_from: ``"wiener"`` (correct the blind Wiener prediction) or ``"stale"`` (the newest estimate).
        seed: seeds the network's initialisation.
        device: where the network lives.
    """

    algo = "channel_predictor"

    def __init__(
        self,
        env: BeamformingEnv,
        *,
        loss: str = "rate",
        precoder: str = "rzf",
        hidden: int = 32,
        learning_rate: float = 1e-3,
        start_from: str = "wiener",
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if start_from not in START_FROM:
            raise ValueError(f"ChannelPredictor: start_from must be one of {START_FROM}, got {start_from!r}")
        if getattr(env, "action_mode", None) != "precoder":
            raise ValueError(
                f"ChannelPredictor needs a BeamformingEnv with action_mode='precoder', got {type(env).__name__}"
            )
        if loss not in LOSSES or precoder not in ("rzf", "zf"):
            raise ValueError(
                f"ChannelPredictor: loss must be one of {LOSSES} and precoder 'rzf' or 'zf', got {loss!r}, {precoder!r}"
            )
        self.hyperparameters = {
            "loss": loss,
            "precoder": precoder,
            "hidden": hidden,
            "learning_rate": learning_rate,
            "start_from": start_from,
            "seed": seed,
        }
        self.start_from = start_from
        self.env, self.loss_name, self.precoder_name = env, loss, precoder
        self.device = torch.device(device)
        with initialisation_seed(seed):  # the agent's own stream: the global RNG is left alone
            self.network = ChannelPredictorNet(env.history, hidden).to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=learning_rate)
        self.num_timesteps = 0
        self._last_obs: torch.Tensor | None = None  # where learn() continues from (saved in training checkpoints)

    # ------------------------------------------------------------------ prediction and precoding
    def predict(self, observations: torch.Tensor) -> torch.Tensor:
        """The predicted channel at transmission, ``(B, K, M, S)`` complex, on the env's device."""
        return self.network(*self._inputs(observations)).to(observations.device)

    def precoders(self, channel: torch.Tensor) -> torch.Tensor:
        """Precoders ``(B, S, M, K)`` for a channel ``(B, K, M, S)``."""
        from ctrlgym.envs.beamforming.precoding import linear_precoder

        return linear_precoder(channel.permute(0, 3, 1, 2), self.precoder_name, self.env.noise_power)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.env.precoder_action(self.precoders(self.predict(observations)))

    def loss(self, observations: torch.Tensor, true_channel: torch.Tensor) -> torch.Tensor:
        """The training loss on a batch: MSE of the prediction, or minus the mean sum rate."""
        from ctrlgym.envs.beamforming.precoding import squared_magnitude, user_rates

        prediction = self.network(*self._inputs(observations))
        true_channel = true_channel.to(self.device)
        if self.loss_name == "mse":
            return squared_magnitude(prediction - true_channel).mean()
        rates = user_rates(true_channel.permute(0, 3, 1, 2), self.precoders(prediction), self.env.noise_power)
        return -rates.sum(-1).mean()

    def _inputs(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        estimates, _, ages = self.env.split_observation(observations.to(self.device))
        base = None
        if self.start_from == "wiener":
            from ctrlgym.envs.beamforming.precoding import blind_wiener_prediction

            base = blind_wiener_prediction(
                estimates, ages.round().long(), self.env.estimation_noise, self.env.slot_duration
            )[0]
        return estimates, ages / self.env.age_scale, base

    # ------------------------------------------------------------------ training
    def learn(
        self,
        env: BeamformingEnv,
        total_timesteps: int,
        callback: Callable[[dict[str, Any]], None] | None = None,
        seed: int = 0,
    ) -> ChannelPredictor:
        """Step ``env`` with the current predictor and fit it on every step's (observation, true
        channel) pairs until ``total_timesteps`` env steps (summed over the batch)."""
        self.env = env
        observations = self._last_obs if self._last_obs is not None else env.reset(seed=seed + self.num_timesteps)[0]
        while self.num_timesteps < total_timesteps:
            loss = self.loss(observations, env.true_channel())
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            observations, _, _, _, info = env.step(self(observations))
            self._last_obs = observations
            self.num_timesteps += env.num_envs
            returns = info["episode"]["r"][info["_episode"]].tolist() if "episode" in info else []
            if callback is not None:
                callback({"timesteps": self.num_timesteps, "loss": float(loss.detach()), "episode_returns": returns})
        return self

    def state_dict(self, with_replay: bool = True) -> dict[str, Any]:
        """Everything needed to resume; ``with_replay`` (a training checkpoint) adds where learn() stands (there is no replay)."""
        state = {
            "algo": self.algo,
            "hyperparameters": self.hyperparameters,
            "history": self.env.history,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "num_timesteps": self.num_timesteps,
        }
        if with_replay:
            state["last_obs"] = self._last_obs
        return state

    def check_compatible(self, state: dict[str, Any], env: BeamformingEnv, path: str | Path) -> None:
        if state["history"] != getattr(env, "history", None):
            raise ValueError(
                f"{path} was trained with history={state['history']}; the env has history={getattr(env, 'history', None)}"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_timesteps = state["num_timesteps"]
