package dev.bdserve.model;

/** A model, tokenizer or adapter file is malformed; the message names the file, tensor and problem. */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) { super(message); }
    public ModelFormatException(String message, Throwable cause) { super(message, cause); }
}
