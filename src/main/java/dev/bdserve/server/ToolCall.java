package dev.bdserve.server;

/** One parsed tool call: its id, the function's name and its arguments as compact JSON text. */
record ToolCall(String id, String name, String arguments) {}
