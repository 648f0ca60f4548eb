"""Alpaca-shaped refusals: the exception every part of the simulator raises to answer an error."""
from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "forbidden", "not_found", "unprocessable"]


class ApiError(Exception):
    """An Alpaca-shaped error answer: HTTP ``status`` with body ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def unprocessable(message: str) -> ApiError:
    """422 (Alpaca's code 42210000): the request is understood but refused."""
    return ApiError(422, 42210000, message)


def not_found(message: str) -> ApiError:
    """404 (40410000)."""
    return ApiError(404, 40410000, message)


def forbidden(message: str) -> ApiError:
    """403 (40310000), e.g. insufficient qty available."""
    return ApiError(403, 40310000, message)
