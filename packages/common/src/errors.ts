/**
 * The error hierarchy every service throws. One middleware (error-middleware.ts) turns these
 * into the contract's JSON shape: `{"error": {"code": "...", "message": "..."}}`.
 *
 * `expose` follows Koa's convention: a client-facing message is shown only when it is safe;
 * anything unexpected becomes a generic 500 so internals never leak.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, code: string, message: string, headers?: Record<string, string>) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.expose = status < 500 || status === 502 || status === 503 || status === 504;
    this.headers = headers;
  }
}

export class ValidationError extends AppError {
  constructor(message: string) {
    super(400, 'validation_error', message);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Resource not found') {
    super(404, 'not_found', message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message = 'Content-Type must be application/json') {
    super(415, 'unsupported_media_type', message);
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(message: string, code = 'service_unavailable', headers?: Record<string, string>) {
    super(503, code, message, headers);
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}
