package dev.bdserve.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.bdserve.engine.EngineException;

/**
 * An error answered in OpenAI's (and vLLM's) shape:
 * {@code {"error": {"message": ..., "type": "BadRequestError", "param": null, "code": 400}}}.
 */
public final class ApiException extends RuntimeException {
    private final int status;
    private final String type;
    private final String param;

    public ApiException(int status, String type, String message, String param) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
    }

    public static ApiException badRequest(String message) { return new ApiException(400, "BadRequestError", message, null); }

    public static ApiException badParam(String param, String message) { return new ApiException(400, "BadRequestError", message, param); }

    public static ApiException notFound(String message) { return new ApiException(404, "NotFoundError", message, null); }

    /** vLLM's message for a model name it does not serve. */
    public static ApiException unknownModel(String name) { return notFound("The model `" + name + "` does not exist."); }

    /** The error type vLLM uses for a status. */
    public static String typeOf(int status) {
        return switch (status) {
            case 400 -> "BadRequestError";
            case 401 -> "AuthenticationError";
            case 404 -> "NotFoundError";
            case 405 -> "MethodNotAllowed";
            case 413 -> "RequestEntityTooLarge";
            case 429 -> "RateLimitError";
            case 503 -> "ServiceUnavailableError";
            default -> status >= 500 ? "InternalServerError" : "BadRequestError";
        };
    }

    /** The engine's error as the API answers it: its status, the type vLLM uses for that status, its message. */
    static ApiException from(EngineException e) {
        return new ApiException(e.status(), typeOf(e.status()), e.getMessage(), null);
    }

    /** The response body. */
    ObjectNode body() {
        ObjectNode r = Json.MAPPER.createObjectNode();
        ObjectNode e = r.putObject("error");
        e.put("message", getMessage());
        e.put("type", type);
        if (param == null) e.putNull("param"); else e.put("param", param);
        e.put("code", status);
        return r;
    }

    public int status() { return status; }
    public String type() { return type; }
    public String param() { return param; }
}
