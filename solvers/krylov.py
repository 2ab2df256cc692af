"""BiCGSTAB (van der Vorst, SIAM J. Sci. Stat. Comput. 13(2), 1992) for the policy-evaluation
system (I − γ P_π) v = r_π, in torch on any device, with the operator given as a function.

Stopped on the max-norm of the residual, the quantity the span stopping rule of the outer loop
reads; restarts from the current residual when the shadow direction breaks down.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["bicgstab"]


def bicgstab(
    operator: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    initial: torch.Tensor,
    tolerance: float,
    max_iterations: int = 1000,
    stall_rate: float | None = None,
) -> tuple[torch.Tensor, float, int]:
    """Solve ``operator(x) = rhs`` from ``initial`` until ``‖rhs − operator(x)‖_∞ ≤ tolerance``.

    Returns ``(x, residual max-norm, matrix-vector products used)``; the best iterate seen is kept,
    so a stalled solve never returns worse than it started. With ``stall_rate`` it gives up once,
    after 30 products, the best residual has fallen more slowly than ``stall_rate`` per product
    (for (I − γP)x = r, a plain sweep x ← r + γPx shrinks it by γ per product).
    """
    x = initial.clone()
    residual = rhs - operator(x)
    best, best_norm, products = x.clone(), float(residual.abs().max()), 1
    initial_norm = best_norm
    shadow, direction, image = residual.clone(), torch.zeros_like(x), torch.zeros_like(x)
    rho = alpha = omega = 1.0
    fresh = True  # the Krylov space was (re)started from the current residual
    while best_norm > tolerance and products < max_iterations:
        rho_next = float(shadow @ residual)
        projection = 0.0
        if rho_next != 0.0 and omega != 0.0:
            direction = residual + (rho_next / rho) * (alpha / omega) * (direction - omega * image)
            image = operator(direction)
            products += 1
            projection = float(shadow @ image)
        if projection == 0.0:  # breakdown: restart from the current residual, once
            if fresh:
                break
            shadow, direction, image = residual.clone(), torch.zeros_like(x), torch.zeros_like(x)
            rho, alpha, omega, fresh = 1.0, 1.0, 1.0, True
            continue
        alpha = rho_next / projection
        half = residual - alpha * image
        stabiliser = operator(half)
        products += 1
        denominator = float(stabiliser @ stabiliser)
        omega = float(stabiliser @ half) / denominator if denominator > 0 else 0.0
        x = x + alpha * direction + omega * half
        residual = half - omega * stabiliser
        rho, fresh = rho_next, False
        norm = float(residual.abs().max())
        if not norm == norm:  # NaN: the recursion broke down numerically
            break
        if norm < best_norm:
            best, best_norm = x.clone(), norm
        if stall_rate is not None and products >= 30 and best_norm > initial_norm * stall_rate**products:
            break
    return best, best_norm, products
