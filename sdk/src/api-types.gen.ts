// The API's types, generated from /openapi.json by openapi-typescript: npm run api-types.
export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness: the process answers */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Alive */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @enum {boolean} */
                            ok: true;
                            /** @enum {string} */
                            broker: "connected" | "reconnecting";
                            /** @description NATS messages this gateway dropped as malformed, by kind */
                            rejectedMessages: {
                                [key: string]: number;
                            };
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness: the broker is reachable (else 503) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Ready */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @enum {boolean} */
                            ok: true;
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This API as an OpenAPI 3.1 document */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The document */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            openapi: string;
                        } & {
                            [key: string]: unknown;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/docs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The API reference, rendered (Swagger UI) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description An HTML page that renders /openapi.json */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/html": string;
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/docs/{asset}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A file of the rendered reference page */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description swagger-ui.css, swagger-ui-bundle.js or start.js */
                    asset: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The file */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/css": string;
                        "text/javascript": string;
                    };
                };
                /** @description No such file */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ui": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The dashboard (docs/dashboard.md); it asks for an API key */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The page, its modules and styles */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/html": string;
                        "text/javascript": string;
                        "text/css": string;
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ui/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Sent to /ui */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description To /ui */
                301: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ui/{file}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A file of the dashboard page */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description app.js, style.css, uPlot.esm.js, ... */
                    file: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The page, its modules and styles */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/html": string;
                        "text/javascript": string;
                        "text/css": string;
                    };
                };
                /** @description No such file */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One function */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The function */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            function: components["schemas"]["FunctionRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        /** Deploy a function (or a new version of it) */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            /** @description The WebAssembly module (up to FLURRY_MAX_MODULE_BYTES) */
            requestBody: {
                content: {
                    "application/octet-stream": string;
                };
            };
            responses: {
                /** @description Deployed over an earlier version */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            function: components["schemas"]["FunctionRecord"];
                        };
                    };
                };
                /** @description Deployed, new */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            function: components["schemas"]["FunctionRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        post?: never;
        /** Delete a function */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Deleted: its name */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            deleted: string;
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        /**
         * Set a function's limits
         * @description Replaces the function's limits (`{}`: the fleet's defaults again). A limit above the fleet's cap is refused 400 naming the cap; a memory limit below what its module declares is refused too. They stay across redeploys.
         */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        limits: components["schemas"]["FunctionLimits"] & unknown;
                    };
                };
            };
            responses: {
                /** @description The function with its limits */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            function: components["schemas"]["FunctionRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        trace?: never;
    };
    "/v1/functions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's functions */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The functions */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            functions: components["schemas"]["FunctionRecord"][];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/hosts": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The worker hosts
         * @description An admin key sees each host's whole record; a user key its capacity only.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The live hosts */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            hosts: (components["schemas"]["HostRecord"] | components["schemas"]["HostCapacity"])[];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/hosts/{id}/drain": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Drain a host: move its instances away (admin) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The host's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The drain */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            drain: components["schemas"]["HostDrainReport"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/hosts/{id}/activate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Take a drained or draining host back into service (admin) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The host's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Active again: its id */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            activated: string;
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/consolidation": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Each host's state and the services controller's latest moves (admin) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The hosts and moves */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ConsolidationState"];
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/data/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One upload's metadata */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The data's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Its metadata */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["DataRecord"];
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        /**
         * Upload data (or a new version of it)
         * @description Streamed into the fleet's object store, up to FLURRY_MAX_DATA_BYTES and the tenant's FLURRY_QUOTA_DATA_BYTES.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The data's name */
                    name: string;
                };
                cookie?: never;
            };
            /** @description The bytes */
            requestBody: {
                content: {
                    "application/octet-stream": string;
                };
            };
            responses: {
                /** @description Stored */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["DataRecord"];
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        post?: never;
        /** Delete data */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The data's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Deleted: its name */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            deleted: string;
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/data": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's data */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The data, by name */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            data: components["schemas"]["DataRecord"][];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's jobs, newest first, a page at a time */
        get: {
            parameters: {
                query?: {
                    /** @description Jobs per page (default 50) */
                    limit?: number;
                    /** @description The `next` of the page before */
                    cursor?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description A page of jobs */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            jobs: components["schemas"]["JobRecord"][];
                            /** @description The cursor of the next page, when there is one */
                            next?: string;
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        /**
         * Start a job
         * @description With an Idempotency-Key, the same key and body again answer the first job (200) instead of starting another; the same key with another body is refused (409).
         */
        post: {
            parameters: {
                query?: never;
                header?: {
                    "idempotency-key"?: string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["JobBody"];
                };
            };
            responses: {
                /** @description The job an earlier request with the same Idempotency-Key started */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            job: components["schemas"]["JobRecord"];
                        };
                    };
                };
                /** @description Started */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            job: components["schemas"]["JobRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One job */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The job's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The job */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            job: components["schemas"]["JobRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        /**
         * Cancel a job
         * @description A job that has ended already is answered as it is.
         */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The job's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The job, cancelled (or as it ended) */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            job: components["schemas"]["JobRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}/result": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A done job's result
         * @description The reduced output as bytes when the job ran reduce, else every clone's output, base64, in clone order. 409 while the job is not done.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The job's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The result */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/octet-stream": string;
                        "application/json": {
                            outputs: string[];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}/clones/{i}/output": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One clone's output */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The job's id */
                    id: string;
                    /** @description The clone's index, from 0 */
                    i: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The output's bytes */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/octet-stream": string;
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A job's events, live (server-sent events)
         * @description Each event is named by its kind (state, placed, snapshot, forked, progress, clone.done, clone.failed, clone.lost, reduced, done, failed, cancelled); its data is the event as JSON, its id its place in the job's stream. Reconnect with Last-Event-ID to go on after the last event received (docs/jobs.md, "Events").
         */
        get: {
            parameters: {
                query?: never;
                header?: {
                    /** @description The id of the last event received */
                    "last-event-id"?: string;
                };
                path: {
                    /** @description The job's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The event stream */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/event-stream": string;
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/callback-secret": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The caller's callback signing secret
         * @description Job callbacks are signed with it (Flurry-Signature); 404 when callbacks are off.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The tenant and its secret */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            tenant: string;
                            secret: string;
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/logs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** What the function's calls logged */
        get: {
            parameters: {
                query?: {
                    /** @description The last N lines, 1 to 10000 (default 100) */
                    limit?: string;
                    /** @description Only runs that ended at or after: an RFC 3339 time, ms since the epoch, or a duration ago (30s, 10m, 2h, 1d) */
                    since?: string;
                    /** @description `true`: Server-Sent Events, the last lines then each new one */
                    follow?: string;
                };
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The last lines kept, oldest first; with `follow=true`, Server-Sent Events: one `line` event per line (`data:` a GuestLogLine, `id:` its run's stream sequence), the last lines first, then each new one */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            lines: components["schemas"]["GuestLogLine"][];
                        };
                        "text/event-stream": string;
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/{id}/logs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** What the job's clones and reduce logged */
        get: {
            parameters: {
                query?: {
                    /** @description The last N lines, 1 to 10000 (default 100) */
                    limit?: string;
                    /** @description Only runs that ended at or after: an RFC 3339 time, ms since the epoch, or a duration ago (30s, 10m, 2h, 1d) */
                    since?: string;
                    /** @description `true`: Server-Sent Events, the last lines then each new one */
                    follow?: string;
                    /** @description One clone's lines (its index) or the reduce's (`reduce`); default all */
                    clone?: string;
                };
                header?: never;
                path: {
                    /** @description The job's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The last lines kept, oldest first; with `follow=true`, Server-Sent Events: one `line` event per line (`data:` a GuestLogLine, `id:` its run's stream sequence), the last lines first, then each new one */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            lines: components["schemas"]["GuestLogLine"][];
                        };
                        "text/event-stream": string;
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/services/{name}/logs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** What the service's instances logged, every instance's */
        get: {
            parameters: {
                query?: {
                    /** @description The last N lines, 1 to 10000 (default 100) */
                    limit?: string;
                    /** @description Only runs that ended at or after: an RFC 3339 time, ms since the epoch, or a duration ago (30s, 10m, 2h, 1d) */
                    since?: string;
                    /** @description `true`: Server-Sent Events, the last lines then each new one */
                    follow?: string;
                };
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The last lines kept, oldest first; with `follow=true`, Server-Sent Events: one `line` event per line (`data:` a GuestLogLine, `id:` its run's stream sequence), the last lines first, then each new one */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            lines: components["schemas"]["GuestLogLine"][];
                        };
                        "text/event-stream": string;
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/dashboard": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The fleet as the caller may see it */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Hosts, services, migrations and (for an admin) moves */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Dashboard"];
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/dashboard/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The dashboard view, streamed whenever it changes */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Server-Sent Events: `event: dashboard` with the view (the Dashboard schema) as its data, at once and on every change; a `: keep-alive` comment after 15 s without one */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/event-stream": string;
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/services": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's services */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The services */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            services: components["schemas"]["ServiceRecord"][];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        /** Create a service */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["CreateServiceBody"];
                };
            };
            responses: {
                /** @description Created; its instances start */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            service: components["schemas"]["ServiceRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/services/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One service */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The service */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            service: components["schemas"]["ServiceRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        /** Delete a service and its instances */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Deleted: its name */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            deleted: string;
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        /** Change how many instances a service has */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["ServiceChange"];
                };
            };
            responses: {
                /** @description The service as changed */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            service: components["schemas"]["ServiceRecord"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        trace?: never;
    };
    "/v1/instances/{id}/migrate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Live-migrate a service instance to another host
         * @description A user key moves its own tenant's instances; an admin key any tenant's (docs/services.md, "Migration").
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The instance's id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "application/json": components["schemas"]["MigrateBody"];
                };
            };
            responses: {
                /** @description Moved */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            migration: components["schemas"]["MigrationReport"];
                        };
                    };
                };
                /** @description A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503 */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/svc/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        options?: never;
        head?: never;
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        trace?: never;
    };
    "/svc/{name}/{path}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        options?: never;
        head?: never;
        /**
         * Call a service (any method)
         * @description Any method, path, query, headers and body are passed to the service's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The service's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The service's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        trace?: never;
    };
    "/v1/functions/{name}/invoke": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Call a function with a POST of raw bytes
         * @description The body is passed to the function's handle() as a POST to `path`; the answer is the guest's, any status and content (a refusal or failure of the platform has the error shape and x-flurry-error). /fn/{name} passes any method and path.
         */
        post: {
            parameters: {
                query?: {
                    /** @description The request path the guest sees (default /); the whole query string is passed on too */
                    path?: string;
                };
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            /** @description The request body (up to FLURRY_MAX_BODY_BYTES) */
            requestBody?: {
                content: {
                    "application/octet-stream": string;
                };
            };
            responses: {
                /** @description The guest's answer, any status and content */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/fn/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        options?: never;
        head?: never;
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        trace?: never;
    };
    "/fn/{name}/{path}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        options?: never;
        head?: never;
        /**
         * Call a function (any method)
         * @description Any method, path, query, headers and body are passed to the function's guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.
         */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description The function's name */
                    name: string;
                    /** @description The rest of the path, slashes included, passed to the guest as its request path */
                    path: string;
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "*/*": string;
                };
            };
            responses: {
                /** @description The function's answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error */
                default: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "*/*": string;
                    };
                };
            };
        };
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @description A refusal or failure of the platform (not a guest's own answer) */
        Error: {
            error: {
                code: components["schemas"]["ErrorCode"];
                /** @description What went wrong, for people */
                message: string;
            };
        };
        /**
         * @description What went wrong, for programs (also in the x-flurry-error header)
         * @enum {string}
         */
        ErrorCode: "bad_request" | "invalid_module" | "unauthorized" | "forbidden" | "not_found" | "payload_too_large" | "timeout" | "guest_trap" | "guest_error" | "output_limit" | "no_capacity" | "unavailable" | "conflict" | "rate_limited" | "quota_exceeded" | "storage_full" | "internal";
        /** @description A deployed function */
        FunctionRecord: {
            tenant: string;
            name: string;
            /** @description SHA-256 of the module bytes, lower-case hex */
            digest: string;
            /** @description Module size in bytes */
            size: number;
            /** @description Entry points the module exports (init, handle, run, reduce, ...) */
            exports: string[];
            /** @description Linear memory size in 64 KiB wasm pages */
            memory: {
                initialPages: number;
                maximumPages: number;
            };
            limits?: components["schemas"]["FunctionLimits"];
            createdAt: number;
            updatedAt: number;
        };
        /** @description Its own limits (PATCH /v1/functions/{name}); absent: the fleet's defaults. Kept across redeploys */
        FunctionLimits: {
            /** @description A call's (or service request's) time limit in ms, at most the gateway's FLURRY_INVOKE_TIMEOUT_MS */
            timeoutMs?: number;
            /** @description Most linear memory its module may declare, at most FLURRY_MAX_GUEST_MEMORY: a module declaring more is refused */
            memoryBytes?: number;
            /** @description Most bytes a call may answer, at most FLURRY_MAX_OUTPUT */
            outputBytes?: number;
        };
        /** @description A worker host as an admin key sees it: its capacity and what it holds for every tenant */
        HostRecord: {
            id: string;
            startedAt: number;
            heartbeatAt: number;
            cores: number;
            memoryBytes: number;
            /** @description Guest threads in the host's pool */
            guestSlots: number;
            /** @description Guest calls running now */
            runningGuests: number;
            /**
             * @description `userfaultfd` when the native pager works on the host
             * @enum {string}
             */
            pager: "userfaultfd" | "portable";
            /** @description True once the host has begun draining, or is drained */
            draining: boolean;
            state?: components["schemas"]["HostState"];
            /** @description Drained, idle and holding nothing: the machine may be released */
            releasable?: boolean;
            /** @description The host's memory budget and what its parents, page caches and instances use of it */
            memoryBudget?: {
                budgetBytes: number;
                usedBytes: number;
            };
            pid: number;
            hostname: string;
            warm: components["schemas"]["WarmFunction"][];
            /** @description Parents of jobs kept for later jobs with the same function version and init */
            parents?: {
                tenant: string;
                function: string;
                moduleDigest: string;
                initDigest: string;
                snapshotId: string;
                memoryBytes: number;
                holders: number;
                idleSince?: number;
            }[];
            /** @description Services' parents booted with an init input that are warm on the host (a migration there starts from one) */
            serviceParents?: {
                tenant: string;
                moduleDigest: string;
                initDigest: string;
            }[];
            /** @description Snapshots whose pages this host caches for clones */
            pageCaches?: string[];
            /** @description Why the host is draining or drained */
            stateReason?: string;
            /** @description The service instances on the host */
            instances?: {
                tenant: string;
                service: string;
                instanceId: string;
                requests: number;
                migrating?: boolean;
            }[];
            /** @description NATS messages the host dropped as malformed, by kind */
            rejectedMessages?: {
                [key: string]: number;
            };
            /** @description How many times the host lost the broker connection */
            brokerOutages?: number;
        };
        /**
         * @description `active` takes work; `draining` is being emptied; `drained` holds nothing and takes no work
         * @enum {string}
         */
        HostState: "active" | "draining" | "drained";
        /** @description A function a host holds a warm parent of */
        WarmFunction: {
            tenant: string;
            name: string;
            digest: string;
        };
        /** @description What every caller sees of a worker host: its capacity (a user key sees no more) */
        HostCapacity: {
            id: string;
            startedAt: number;
            heartbeatAt: number;
            cores: number;
            memoryBytes: number;
            /** @description Guest threads in the host's pool */
            guestSlots: number;
            /** @description Guest calls running now */
            runningGuests: number;
            /**
             * @description `userfaultfd` when the native pager works on the host
             * @enum {string}
             */
            pager: "userfaultfd" | "portable";
            /** @description True once the host has begun draining, or is drained */
            draining: boolean;
            state?: components["schemas"]["HostState"];
            /** @description Drained, idle and holding nothing: the machine may be released */
            releasable?: boolean;
            /** @description The host's memory budget and what its parents, page caches and instances use of it */
            memoryBudget?: {
                budgetBytes: number;
                usedBytes: number;
            };
        };
        /** @description Every instance moved away, or why one could not be (the host then stays draining) */
        HostDrainReport: {
            hostId: string;
            moved: components["schemas"]["HostMove"][];
            failed: {
                instanceId: string;
                error: string;
            }[];
        };
        /** @description One instance moved by the services controller (a consolidation or a drain), and why */
        HostMove: {
            at: number;
            tenant: string;
            service: string;
            instanceId: string;
            from: string;
            to?: string;
            /** @enum {string} */
            kind: "consolidate" | "drain";
            reason: string;
            ok: boolean;
            downtimeMs?: number;
            error?: string;
        };
        /** @description Each host's state, and the services controller's latest moves, newest last */
        ConsolidationState: {
            hosts: {
                id: string;
                /** @enum {string} */
                state: "active" | "draining" | "drained";
                stateReason?: string;
                instances: number;
                runningGuests: number;
                releasable: boolean;
            }[];
            moves: components["schemas"]["HostMove"][];
        };
        /** @description Uploaded data, usable as a job's or service's `initData` */
        DataRecord: {
            name: string;
            bytes: number;
            /** @description `sha256:<hex>` of the bytes */
            digest: string;
            createdAt: number;
        };
        /** @description A fork-join job: one snapshot of a warm parent, forked into `clones` clones */
        JobRecord: {
            id: string;
            tenant: string;
            function: string;
            /** @description The module digest the job runs */
            digest: string;
            clones: number;
            state: components["schemas"]["JobState"];
            createdAt: number;
            updatedAt: number;
            startedAt?: number;
            finishedAt?: number;
            /** @description The host of the warm parent that was snapshotted */
            parentHost?: string;
            snapshotId?: string;
            /**
             * @description `fork`: clones forked from one snapshotted parent; `cold`: every clone booted and ran init itself
             * @enum {string}
             */
            boot?: "fork" | "cold";
            /** @description The uploaded data used as the init input, by name */
            initData?: string;
            /** @description The parent was kept from an earlier job with the same function version and init */
            parentReused?: boolean;
            initMs?: number;
            snapshotMs?: number;
            counts: {
                done: number;
                failed: number;
                running: number;
                pending: number;
            };
            clonesDetail: components["schemas"]["CloneDetail"][];
            /** @description Pages the clones waited for, all together */
            pagesFetched: number;
            error?: components["schemas"]["ErrorInfo"] & unknown;
            /** @description Each failed clone's error */
            errors?: {
                index: number;
                code: components["schemas"]["ErrorCode"];
                message: string;
            }[];
            callback?: components["schemas"]["CallbackOutcome"];
            tasks?: components["schemas"]["TaskCounts"];
        };
        /**
         * @description Where a job stands; `done`, `failed` and `cancelled` are final
         * @enum {string}
         */
        JobState: "queued" | "snapshotting" | "running" | "reducing" | "done" | "failed" | "cancelled";
        /** @description One clone of a job */
        CloneDetail: {
            index: number;
            /** @enum {string} */
            state: "pending" | "running" | "done" | "failed";
            /** @description The host the clone runs or ran on */
            host?: string;
            /** @description How many times it was forked (retries and re-forks after a lost host included) */
            attempts: number;
            startMs?: number;
            runMs?: number;
            error?: components["schemas"]["ErrorInfo"];
            pages?: components["schemas"]["PageCounts"];
        };
        /** @description A platform error as a job or clone record carries it */
        ErrorInfo: {
            code: components["schemas"]["ErrorCode"];
            message: string;
        };
        /** @description Where a clone's memory pages came from: on the host already, multicast, asked for by this host alone, or all-zero */
        PageCounts: {
            local: number;
            multicast: number;
            unicast: number;
            zero: number;
        };
        /** @description The delivery of a job's callback */
        CallbackOutcome: {
            /** @enum {string} */
            state: "pending" | "delivered" | "failed";
            attempts: number;
            /** @description The last attempt's HTTP status, when the receiver answered */
            lastStatus?: number;
            lastError?: string;
            /** @description When the last attempt ended */
            at?: number;
        };
        /** @description A job with tasks: its progress is tasks done / total */
        TaskCounts: {
            total: number;
            done: number;
            /** @description Tasks some clone runs now (a task with a backup counts once) */
            running: number;
            /** @description Backup tasks handed out: duplicates of tasks still running elsewhere */
            backups: number;
            /** @description Results of tasks that had one already, dropped */
            duplicates: number;
            /** @description Failures of run_task, each counted against its task's retries */
            failures: number;
        };
        /** @description A job to run */
        JobBody: {
            /** @description The function to fork: it exports run(index, count) */
            function: string;
            /** @description How many clones to fork */
            clones: number;
            /** @description Work units: the clones take task indices as they go and run run_task(task, tasks) for each; every clone gets the whole input (docs/jobs.md, "Tasks") */
            tasks?: number;
            /**
             * Format: byte
             * @description The parent's init input (default empty)
             */
            init?: string;
            /** @description Or the name of uploaded data as the init input */
            initData?: string;
            /**
             * @description `fork` (default): clones of one snapshotted parent; `cold`: every clone boots and runs init itself
             * @enum {string}
             */
            boot?: "fork" | "cold";
            /** @description Keep the parent for later jobs with the same function version and init (default true) */
            keepParent?: boolean;
            /**
             * Format: byte
             * @description Every clone's input (default empty)
             */
            input?: string;
            /** @description Or one input per clone */
            inputs?: string[];
            /** @description Each clone's time limit (default 600000) */
            timeoutMs?: number;
            /** @description Attempts after a failed one, per clone (default 1) */
            retries?: number;
            /** @description Run reduce(count) over the outputs (default: when the function exports it) */
            reduce?: boolean;
            /**
             * Format: uri
             * @description Where to POST the job's outcome when it ends, signed (docs/jobs.md, "Callbacks")
             */
            callbackUrl?: string;
        };
        /** @description One line a guest logged, with what ran */
        GuestLogLine: {
            /** @description When the run that logged it ended (ms since the Unix epoch) */
            at: number;
            /** @enum {string} */
            level: "debug" | "info" | "warn" | "error";
            message: string;
            /** @description The call's request id, or the clone's fork request */
            requestId: string;
            hostId: string;
            /** @description A function call's function */
            function?: string;
            jobId?: string;
            /** @description A job's clone index, or `reduce` */
            clone?: number | "reduce";
            service?: string;
            instanceId?: string;
            /** @description Only on the platform's note that ends a run whose lines went over the per-call limit: how many were not kept */
            dropped?: number;
        };
        /** @description The fleet as the caller may see it (docs/dashboard.md) */
        Dashboard: {
            at: number;
            caller: {
                tenant: string;
                /** @enum {string} */
                role: "user" | "admin";
            };
            hosts: components["schemas"]["DashboardHost"][];
            /** @description Absent when the gateway runs no services */
            services?: components["schemas"]["DashboardService"][];
            /** @description The latest migrations this gateway drove, newest last: a user's own instances', every one for an admin */
            migrations?: components["schemas"]["DashboardMigration"][];
            /** @description The controller's consolidation and drain moves, newest last (admins only) */
            moves?: components["schemas"]["HostMove"][];
        };
        /** @description A live host as the dashboard shows it */
        DashboardHost: {
            id: string;
            /** @enum {string} */
            state: "active" | "draining" | "drained";
            /** @description Why it drains (admins only) */
            stateReason?: string;
            /** @enum {string} */
            pager: "userfaultfd" | "portable";
            cores: number;
            guestSlots: number;
            runningGuests: number;
            memoryBudget?: {
                budgetBytes: number;
                usedBytes: number;
            };
            heartbeatAt: number;
            releasable: boolean;
            /** @description Warm parents: a user sees its own tenant's only */
            warm: components["schemas"]["WarmFunction"][];
            /** @description Kept job parents: a user sees its own tenant's only */
            parents: {
                tenant: string;
                moduleDigest: string;
                initDigest: string;
                function: string;
                snapshotId: string;
                memoryBytes: number;
                /** @description Jobs holding it now; 0 when idle */
                holders: number;
                idleSince?: number;
            }[];
            /** @description Service instances: a user sees its own tenant's only */
            instances: {
                tenant: string;
                service: string;
                instanceId: string;
                /** @description Requests it ran on this host */
                requests: number;
                /** @description Requests per second over the last 5 s of heartbeats */
                perSecond?: number;
                migrating?: boolean;
            }[];
        };
        /** @description One of the caller's services and its instances */
        DashboardService: {
            name: string;
            function: string;
            min: number;
            max: number;
            instances: {
                id: string;
                host: string;
                /** @description Requests this gateway has in flight to it */
                inFlight: number;
                perSecond?: number;
                migrating?: {
                    target: string;
                    since: number;
                };
            }[];
        };
        /** @description A live migration this gateway drove */
        DashboardMigration: {
            /** @description When it committed */
            at: number;
            tenant: string;
            service: string;
            instanceId: string;
            source: string;
            target: string;
            /** @description Pages sent in each pre-copy round, and how long it took */
            rounds: {
                pages: number;
                ms: number;
            }[];
            /** @description Pages sent during the pause (stop-and-copy) */
            finalPages: number;
            /** @description Why the pre-copy stopped: `budget`, `not-shrinking`, `max-rounds` or `stop-and-copy` */
            stopReason: string;
            /** @description The pause: requests to the instance were held this long */
            downtimeMs: number;
            totalMs: number;
            totalBytes: number;
            /** @description Requests held during the pause and forwarded to the target */
            forwarded: number;
        };
        /** @description A long-lived service: min..max persistent instances of one function version */
        ServiceRecord: {
            tenant: string;
            name: string;
            function: string;
            /** @description The function version the service was created with */
            digest: string;
            /** @description The init input of the instances' parent, base64 (as given) */
            init?: string;
            /** @description Or the name of the uploaded data that is its init input */
            initData?: string;
            min: number;
            max: number;
            /** @description Requests in flight per instance the autoscaler aims at */
            targetConcurrency: number;
            createdAt: number;
            updatedAt: number;
            instances: components["schemas"]["ServiceInstance"][];
        };
        /** @description One instance of a service and the host that holds it */
        ServiceInstance: {
            id: string;
            host: string;
            /** @description Requests the answering gateway has in flight to the instance */
            inFlight: number;
            createdAt: number;
            /** @description Present while a migration of the instance is under way */
            migrating?: {
                target: string;
                since: number;
                migrationRequest: string;
            };
        };
        /** @description A service to create */
        CreateServiceBody: {
            name: string;
            /** @description The function the instances run: it exports handle() */
            function: string;
            /** @description Instances kept however idle (default 1) */
            min?: number;
            /** @description Instances at most (default min); at least min */
            max?: number;
            /** @description Requests in flight per instance the autoscaler aims at (default 8) */
            targetConcurrency?: number;
            /**
             * Format: byte
             * @description The init input of the instances' parent
             */
            init?: string;
            /** @description Or the name of uploaded data as the init input */
            initData?: string;
        };
        /** @description What may change of a service; its function and init may not (its instances are clones of one parent: create a new service instead) */
        ServiceChange: {
            /** @description Instances kept however idle (default 1) */
            min?: number;
            /** @description Instances at most (default min); at least min */
            max?: number;
            /** @description Requests in flight per instance the autoscaler aims at (default 8) */
            targetConcurrency?: number;
        };
        /** @description What a live migration of a service instance did */
        MigrationReport: {
            source: string;
            target: string;
            /** @description Dirty tracking used: `async` / `sync` (native pager) or `compare` */
            mode?: string;
            /** @description Each pre-copy round, round 0 (all non-zero pages) first */
            rounds: {
                pages: number;
                bytes: number;
                ms: number;
                /** @description Paced (FLURRY_MIGRATION_PACE_MIB_S): the rate the round was sent at, bytes a second */
                paceBytesPerS?: number;
                /** @description What the round waited before its slices to keep the instance's requests on time on the source: round 0 starts at its floor rate and speeds up while they are (FLURRY_MIGRATION_YIELD_MAX_MS) */
                waitedMs?: number;
            }[];
            /** @description `budget`, `not-shrinking`, `max-rounds` or `stop-and-copy` */
            stopReason: string;
            /** @description The instance's memory at the stop: `totalBytes` / `memoryBytes` is what the migration sent against its size */
            memoryBytes: number;
            /** @description Pages sent while the instance was paused */
            finalPages: number;
            downtimeMs: number;
            /** @description Where the pause went */
            downtime: {
                stopMs: number;
                waitMs: number;
                readMs: number;
                sendMs: number;
                commitMs: number;
                targetApplyMs: number;
                targetCommitMs: number;
                releaseMs: number;
                /** @description Of `commitMs`, from the source's send to the target's handler (hosts that share a clock) */
                commitOutMs?: number;
                /** @description Of `commitMs`, from the target's answer to the source (hosts that share a clock) */
                commitBackMs?: number;
            };
            totalMs: number;
            totalBytes: number;
            perPageMs: number;
            /** @description Requests held during the pause and answered by the target */
            forwarded: number;
            /** @description With `verify`: SHA-256 of the memory on the source once stopped and on the target once committed */
            verify?: {
                sourceMemory: string;
                targetMemory: string;
                memoryBytes: number;
            };
            pagesSent: number;
            pagesApplied?: number;
            /** @description The commit's answer was lost and the target was asked whether it took effect */
            outcomeAsked?: boolean;
            /** @description The gateway's placement write, after the pause */
            placementMs: number;
            /** @description Before round 0: the parent's digest and the target's prepare (which may boot the parent there) */
            prepareMs?: number;
            /** @description Round 0 sent only the pages written since the instance was forked: the target started from its own copy of the same parent */
            fromParent?: boolean;
            /** @description The pages went on a page stream between the two hosts, not through the broker (FLURRY_MIGRATION_STREAM) */
            pageStream?: boolean;
        };
        /** @description How to migrate an instance; every field optional, the body too */
        MigrateBody: {
            /** @description The host to move to (default: the placement's choice) */
            target?: string;
            /** @description The pause pre-copy aims to stay within */
            downtimeBudgetMs?: number;
            /** @description Pre-copy rounds at most (0: stop-and-copy only) */
            maxRounds?: number;
            /** @description Compare the memory's hash on the source and the target */
            verify?: boolean;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
