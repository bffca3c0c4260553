// @mode serverless
// @cors reflective
// @timeout 5000
// @description Says hello: the smallest endpoint there is.
return { message: 'Hello from wexec!', time: Date.now() };
