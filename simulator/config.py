"""Settings of the Ollama simulator; changeable at runtime through `POST /_sim/config`."""

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MODELS: tuple[str, ...] = (
    "llama3.2:3b",
    "smollm2:135m",
    "qwen2.5-coder:14b",
    "mistral-small3.2:24b",
    "qwen3-30b-40k",
    "Qwen3-VL-32B",
    "gpt-oss:20b",
    "glm-4.7-flash",
    "bge-m3",
    "nomic-embed-text",
    "qwen3.5:cloud",
    "deepseek-v3.2:cloud",
)


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    token_delay_ms: float = Field(default=0, ge=0)
    tokens: int = Field(default=32, ge=0)
    # Like OLLAMA_NUM_PARALLEL: per loaded model; requests beyond it wait without limit.
    num_parallel: int = Field(default=4, ge=1)
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    version: str = "0.33.0"
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0
