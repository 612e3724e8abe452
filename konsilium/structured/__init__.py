"""Tool calling and structured output: OpenAI's `tools` / `tool_choice` / `response_format` in konsilium's terms.

- `request`: the request's tool and format fields, checked (bad schemas are a clear 400), as what the model is shown
  (`ToolUse.tools`) and what its text must be (`engines.Constraint`);
- `template`: messages with tool calls and tool results, and the tools, through the model's own chat template (or a
  hermes-style system prompt where the template knows no tools);
- `hermes`: the model's `<tool_call>` blocks read back into OpenAI tool calls, streamed or whole;
- `grammar`: a constraint as a grammar (llguidance) and the per-row token mask the transformers engine applies.
"""
