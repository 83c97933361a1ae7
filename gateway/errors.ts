// The gateway's one error class; app.ts maps it (and nothing else) to a JSON error response.
export class ApiError extends Error {
  constructor(readonly status: 400 | 401 | 404 | 409 | 413 | 500 | 502 | 503 | 504, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, message);
export const notFound = (message: string): ApiError => new ApiError(404, message);
