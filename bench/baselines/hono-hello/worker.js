// The smallest useful Hono Worker: what any Hono app pays per request.
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("Hello Hono!"));

export default app;
