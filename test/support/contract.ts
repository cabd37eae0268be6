/**
 * Contract tests: every response a test receives is checked against openapi.yaml.
 *
 * - `contractRequest(app.callback())` is supertest's `request(...)`, except that each response
 *   is also checked; a violation fails the request like a failed `.expect()`.
 * - `checkedRawRequest()` is test/support/http.ts's `rawRequest`, checked the same way.
 * - `assertContract(response)` checks any other response (newman's, say).
 *
 * What counts as a violation: a path the document does not list (anything but its 404), a
 * method it does not list for a path (anything but its 405, whose `Allow` must name exactly the
 * documented methods), a status the operation does not list, a required header missing, a
 * header that is neither documented nor HTTP framing, a Content-Type that is not documented, a
 * body where none is documented (or none where one is), and a JSON body its schema refuses
 * (schemas close their objects with `additionalProperties: false`, so an extra field fails).
 *
 * Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), compiled by Ajv straight from the
 * document: nothing is copied or converted, so the tests read what the Swagger UI shows.
 *
 * Every violation is also recorded; test/support/contract-hooks.ts fails a test that passed
 * although one of its responses broke the contract (a test that caught the error, say).
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import request from 'supertest';
import YAML from 'yaml';
import { isCanonicalPath } from '@crud-master/common';
import { rawRequest, type RawRequest, type RawResponse } from './http';

export const SPEC_PATH = path.resolve(__dirname, '..', '..', 'openapi.yaml');

/**
 * Whose response it is. The inventory serves the gateway's `/api/movies` routes exactly (the
 * gateway passes them through unchanged), so both are checked against the gateway's paths. The
 * inventory's own `/health` is not a gateway route: it is held to the shared HealthReport schema.
 */
export type Api = 'gateway' | 'inventory';

export interface ObservedResponse {
  method: string;
  /** The request target as sent: path and query string. */
  url: string;
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string | string[] | undefined>;
  /** The body as received; `undefined` when the client did not keep it (checks on it are skipped). */
  body: Buffer | string | undefined;
}

export class ContractViolation extends Error {
  constructor(
    readonly problems: string[],
    readonly response: ObservedResponse,
  ) {
    super(
      `response does not match openapi.yaml: ${response.method} ${response.url} -> ${response.status}\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        `\n  body: ${bodyText(response.body)?.slice(0, 500) ?? '(not captured)'}`,
    );
    this.name = 'ContractViolation';
  }
}

/** Headers that describe the message's framing or transport rather than the API (RFC 9110/9112). */
const FRAMING_HEADERS = new Set(['content-type', 'content-length', 'transfer-encoding', 'date', 'connection', 'keep-alive']);
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const SPEC_ID = 'urn:crud-master:openapi';

type Json = Record<string, unknown>;

interface Located<T> {
  value: T;
  /** JSON pointer of `value` in the document. */
  pointer: string;
}

interface Route {
  template: string;
  regex: RegExp;
  params: number;
  item: Json;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function bodyText(body: Buffer | string | undefined): string | undefined {
  if (body === undefined) return undefined;
  return typeof body === 'string' ? body : body.toString('utf8');
}

function headerValue(headers: ObservedResponse['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

function isJsonMedia(media: string): boolean {
  return media === 'application/json' || media.endsWith('+json');
}

/** Path of a request target, without its query string and without one trailing slash. */
export function normalisePath(url: string): string {
  const pathname = url.split(/[?#]/)[0] ?? '/';
  return pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
}

export class OpenApiContract {
  readonly document: Json;
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly routes: Route[];

  constructor(document: Json) {
    this.document = document;
    this.ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
    addFormats(this.ajv);
    // OpenAPI's own keywords inside schemas, and the document's top-level fields: known, not
    // validated, so that schemas are compiled where they stand in the document.
    this.ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']);
    this.ajv.addVocabulary(Object.keys(document).filter((key) => key !== 'externalDocs'));
    this.ajv.addSchema(document, SPEC_ID);
    const paths = isObject(document.paths) ? document.paths : {};
    this.routes = Object.entries(paths)
      .filter((entry): entry is [string, Json] => isObject(entry[1]))
      .map(([template, item]) => {
        const params = (template.match(/\{[^}]+\}/g) ?? []).length;
        const source = template
          .split(/(\{[^}]+\})/)
          .map((part) => (/^\{[^}]+\}$/.test(part) ? '([^/]+)' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('');
        return { template, regex: new RegExp(`^${source}$`), params, item };
      })
      // OpenAPI: concrete paths are matched before templated ones.
      .sort((a, b) => a.params - b.params);
  }

  static fromFile(file: string = SPEC_PATH): OpenApiContract {
    return new OpenApiContract(YAML.parse(fs.readFileSync(file, 'utf8')) as Json);
  }

  /** Every documented operation, as `GET /api/movies`, in document order. */
  operations(): Array<{ method: string; path: string; operationId: string | undefined }> {
    const out: Array<{ method: string; path: string; operationId: string | undefined }> = [];
    for (const [template, item] of Object.entries(isObject(this.document.paths) ? this.document.paths : {})) {
      if (!isObject(item)) continue;
      for (const method of METHODS) {
        const op = item[method];
        if (isObject(op)) out.push({ method: method.toUpperCase(), path: template, operationId: op.operationId as string | undefined });
      }
    }
    return out;
  }

  /** The problems of one response; empty when it matches the document. */
  check(res: ObservedResponse, api: Api = 'gateway'): string[] {
    const method = res.method.toLowerCase();
    const path = normalisePath(res.url);
    // A limit answer (x-request-limit-responses) fits any request; other answers with the same
    // status (a 400 validation_error, say) are checked as the operation's below.
    const limit = this.requestLimitResponse(res.status);
    if (limit && this.checkResponse(res, limit).length === 0) return [];
    if (api === 'inventory' && path === '/health') return this.checkInventoryHealth(res);

    // A path that is not canonical (`//`, dot segments, encoded slashes) is no route's.
    const route = isCanonicalPath(res.url.split(/[?#]/)[0] ?? '/') ? this.routes.find((r) => r.regex.test(path)) : undefined;
    if (!route) {
      const fallback = this.unmatched('unknownPath');
      if (res.status !== fallback.status) return [`undocumented path ${path} (answered ${res.status}; only ${fallback.status} is documented for unknown paths)`];
      return this.checkResponse(res, fallback.response);
    }

    const documented = METHODS.filter((m) => isObject(route.item[m]));
    // HEAD is GET without the body (RFC 9110 §9.3.2), wherever GET is documented.
    const opMethod = method === 'head' && !isObject(route.item.head) ? 'get' : method;
    const operation = isObject(route.item[opMethod]) ? (route.item[opMethod] as Json) : undefined;
    const where = `${res.method.toUpperCase()} ${route.template}`;
    if (!operation) {
      const fallback = this.unmatched('unsupportedMethod');
      if (res.status !== fallback.status) return [`undocumented method: ${where} (answered ${res.status})`];
      const problems = this.checkResponse(res, fallback.response);
      const allowed = new Set(documented.map((m) => m.toUpperCase()));
      if (allowed.has('GET')) allowed.add('HEAD');
      const allow = headerValue(res.headers, 'allow');
      const got = new Set((allow ?? '').split(',').map((m) => m.trim().toUpperCase()).filter(Boolean));
      const same = got.size === allowed.size && [...got].every((m) => allowed.has(m));
      if (allow !== undefined && !same) {
        problems.push(`Allow: "${allow}" but openapi.yaml documents ${[...allowed].sort().join(', ')} for ${route.template}`);
      }
      return problems;
    }

    const responses = this.resolve<Json>(operation.responses, `/paths/${pointerSegment(route.template)}/${opMethod}/responses`);
    const key = [String(res.status), `${String(res.status)[0]}XX`, 'default'].find((k) => responses.value[k] !== undefined);
    if (key === undefined) {
      const listed = Object.keys(responses.value).join(', ');
      return [`undocumented status ${res.status} for ${where} (documented: ${listed})`];
    }
    return this.checkResponse(res, this.resolve<Json>(responses.value[key], `${responses.pointer}/${pointerSegment(key)}`));
  }

  /** The answer any request may get for `status` (x-request-limit-responses), if there is one. */
  private requestLimitResponse(status: number): Located<Json> | undefined {
    const all = this.document['x-request-limit-responses'];
    if (!isObject(all) || all[String(status)] === undefined) return undefined;
    return this.resolve<Json>(all[String(status)], `/x-request-limit-responses/${status}`);
  }

  private unmatched(kind: 'unknownPath' | 'unsupportedMethod'): { status: number; response: Located<Json> } {
    const all = this.document['x-unmatched-responses'];
    const entry = isObject(all) ? all[kind] : undefined;
    if (!isObject(entry) || typeof entry.status !== 'number') throw new Error(`openapi.yaml: x-unmatched-responses.${kind} is missing`);
    return { status: entry.status, response: this.resolve<Json>(entry.response, `/x-unmatched-responses/${kind}/response`) };
  }

  /** Status, headers and body of a response against one documented Response Object. */
  private checkResponse(res: ObservedResponse, response: Located<Json>): string[] {
    const problems: string[] = [];
    const headers = isObject(response.value.headers) ? response.value.headers : {};
    const documentedHeaders = new Set<string>();
    for (const [name, raw] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      documentedHeaders.add(lower);
      if (lower === 'content-type') continue; // OpenAPI: ignored, described by `content`
      const header = this.resolve<Json>(raw, `${response.pointer}/headers/${pointerSegment(name)}`);
      const value = headerValue(res.headers, lower);
      if (value === undefined) {
        if (header.value.required === true) problems.push(`required header ${name} is missing`);
        continue;
      }
      if (isObject(header.value.schema)) {
        const validate = this.validator(`${header.pointer}/schema`);
        if (!validate(value)) problems.push(`header ${name}: "${value}" ${this.ajv.errorsText(validate.errors, { dataVar: name })}`);
      }
    }
    for (const name of Object.keys(res.headers)) {
      const lower = name.toLowerCase();
      if (!FRAMING_HEADERS.has(lower) && !documentedHeaders.has(lower)) problems.push(`undocumented header ${lower}: "${headerValue(res.headers, lower)}"`);
    }

    // HEAD answers and 1xx/204/304 carry no content (RFC 9110 §6.4.1).
    const bodiless = res.method.toUpperCase() === 'HEAD' || res.status === 204 || res.status === 304 || res.status < 200;
    const text = bodyText(res.body);
    const contentType = headerValue(res.headers, 'content-type');
    const content = isObject(response.value.content) ? response.value.content : undefined;
    if (!content) {
      if (text !== undefined && text.length > 0) problems.push(`a body where openapi.yaml documents none`);
      if (contentType !== undefined) problems.push(`Content-Type "${contentType}" where openapi.yaml documents no content`);
      return problems;
    }
    if (bodiless) {
      if (text !== undefined && text.length > 0) problems.push(`a body on a ${res.method.toUpperCase()} ${res.status} answer`);
    } else if (text !== undefined && text.length === 0) {
      problems.push('an empty body where openapi.yaml documents content');
    }
    if (contentType === undefined) {
      if (!bodiless) problems.push(`no Content-Type (documented: ${Object.keys(content).join(', ')})`);
      return problems;
    }
    const media = mediaType(contentType);
    const key = Object.keys(content).find((k) => k.toLowerCase() === media);
    if (key === undefined) {
      problems.push(`undocumented Content-Type "${contentType}" (documented: ${Object.keys(content).join(', ')})`);
      return problems;
    }
    const mediaObject = content[key];
    if (bodiless || text === undefined || !isJsonMedia(media) || !isObject(mediaObject) || !isObject(mediaObject.schema)) return problems;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      problems.push(`the body is not valid JSON although the Content-Type is ${contentType}`);
      return problems;
    }
    problems.push(...this.schemaProblems(`${response.pointer}/content/${pointerSegment(key)}/schema`, parsed, 'body'));
    return problems;
  }

  /** One line per schema error, naming the offending field. */
  private schemaProblems(pointer: string, value: unknown, label: string): string[] {
    const validate = this.validator(pointer);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((error) => {
      const detail = error.keyword === 'additionalProperties' ? ` "${String(error.params.additionalProperty)}"` : '';
      return `${label}${error.instancePath}: ${error.message ?? error.keyword}${detail} (${error.schemaPath.replace(`${SPEC_ID}#`, '')})`;
    });
  }

  /** Not a gateway route (see `Api`): its status, Cache-Control and body against the shared schema. */
  private checkInventoryHealth(res: ObservedResponse): string[] {
    const problems: string[] = [];
    if (res.method.toUpperCase() !== 'GET' && res.method.toUpperCase() !== 'HEAD') return [`inventory /health answers only GET (got ${res.method})`];
    if (res.status !== 200 && res.status !== 503) problems.push(`inventory /health answered ${res.status}, not 200 or 503`);
    const cacheControl = this.validator('/components/headers/CacheControlNoStore/schema');
    if (!cacheControl(headerValue(res.headers, 'cache-control'))) problems.push('inventory /health: Cache-Control must be no-store');
    if (!isJsonMedia(mediaType(headerValue(res.headers, 'content-type') ?? ''))) problems.push('inventory /health: not JSON');
    const text = bodyText(res.body);
    if (res.method.toUpperCase() === 'GET' && text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return [...problems, 'inventory /health: the body is not valid JSON'];
      }
      problems.push(...this.schemaProblems('/components/schemas/HealthReport', parsed, 'inventory /health body'));
    }
    return problems;
  }

  /** Follows `$ref`s (Reference Objects) to the object they name, keeping its pointer. */
  private resolve<T>(value: unknown, pointer: string): Located<T> {
    let current = value;
    let where = pointer;
    for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops++) {
      if (hops > 20 || !current.$ref.startsWith('#/')) throw new Error(`openapi.yaml: cannot follow $ref ${String(current.$ref)} at ${where}`);
      where = current.$ref.slice(1);
      current = where
        .split('/')
        .slice(1)
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), this.document);
    }
    if (!isObject(current)) throw new Error(`openapi.yaml: nothing at ${where}`);
    return { value: current as T, pointer: where };
  }

  /** The compiled schema found at `pointer` in the document (compiled once). */
  private validator(pointer: string): ValidateFunction {
    let validate = this.validators.get(pointer);
    if (!validate) {
      const fragment = pointer.split('/').map((s) => encodeURIComponent(s)).join('/');
      validate = this.ajv.compile({ $ref: `${SPEC_ID}#${fragment}` });
      this.validators.set(pointer, validate);
    }
    return validate;
  }
}

// --- one contract per run, and the violations of the current test -----------------------------

let shared: OpenApiContract | undefined;

/** The contract of openapi.yaml, loaded once. */
export function contract(): OpenApiContract {
  shared ??= OpenApiContract.fromFile();
  return shared;
}

const recorded: ContractViolation[] = [];

/** The violations seen since the last call (test/support/contract-hooks.ts calls it after each test). */
export function takeViolations(): ContractViolation[] {
  return recorded.splice(0, recorded.length);
}

/** Checks a response, records and returns the violation if there is one. */
export function findViolation(res: ObservedResponse, api: Api = 'gateway'): ContractViolation | undefined {
  const problems = contract().check(res, api);
  if (problems.length === 0) return undefined;
  const violation = new ContractViolation(problems, res);
  recorded.push(violation);
  return violation;
}

/** Throws a ContractViolation when the response does not match openapi.yaml. */
export function assertContract(res: ObservedResponse, api: Api = 'gateway'): void {
  const violation = findViolation(res, api);
  if (violation) throw violation;
}

// --- supertest ---------------------------------------------------------------------------------

type AssertCallback = (err: unknown, res: unknown) => void;
interface TestInternals {
  assert(resError: unknown, res: request.Response | undefined, fn?: AssertCallback): void;
}

function observed(res: request.Response): ObservedResponse {
  const req = (res as unknown as { req?: { method?: string; path?: string } }).req;
  const raw = res as unknown as { text?: unknown; body?: unknown };
  return {
    method: req?.method ?? 'GET',
    url: req?.path ?? '/',
    status: res.status,
    headers: res.headers as Record<string, string | string[] | undefined>,
    body: typeof raw.text === 'string' ? raw.text : Buffer.isBuffer(raw.body) ? raw.body : undefined,
  };
}

/**
 * Makes a supertest Test check its response against the contract once it arrives, after the
 * test's own `.expect()`s: a violation becomes the request's error (the promise rejects).
 */
function checkOnResponse(test: request.Test, api: Api): request.Test {
  const internals = test as unknown as TestInternals;
  const assert = internals.assert.bind(test);
  internals.assert = (resError, res, fn) =>
    assert(resError, res, (err, response) => {
      const violation = res ? findViolation(observed(res), api) : undefined;
      fn?.call(test, err ?? violation ?? null, response);
    });
  return test;
}

/**
 * supertest's `request(handler)` whose every response is checked against openapi.yaml:
 * `contractRequest(app.callback()).get('/api/movies').expect(200)`.
 */
export function contractRequest(handler: http.RequestListener, api: Api = 'gateway'): ReturnType<typeof request> {
  const agent = request(handler);
  return new Proxy(agent, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result instanceof request.Test ? checkOnResponse(result, api) : result;
      };
    },
  });
}

// --- rawRequest --------------------------------------------------------------------------------

/** test/support/http.ts's `rawRequest`, whose responses are checked against openapi.yaml. */
export function checkedRawRequest(api: Api = 'gateway') {
  return async (baseUrl: string, req: RawRequest, timeoutMs?: number): Promise<RawResponse> => {
    const res = await rawRequest(baseUrl, req, timeoutMs);
    assertContract({ method: req.method ?? 'GET', url: req.path, status: res.status, headers: res.headers, body: res.body }, api);
    return res;
  };
}
