// @description A dynamic route: /api/users/42 answers with user 42.
interface User {
  id: string;
  name: string;
}

const id = metadata.parameters.id as string;
const user: User = { id, name: `user-${id}` };
return { user, method: metadata.method, query: metadata.query };
