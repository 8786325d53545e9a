"""The API's routes, one router per group: ``service`` (health, status), ``answers`` (retrieve,
answer) and ``openai`` (models, chat completions)."""
