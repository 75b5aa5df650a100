import { Link, isRouteErrorResponse, useRouteError } from 'react-router';
import { AuthLayout } from '@/components/layouts/auth-layout';

export function NotFoundRoute() {
  return (
    <AuthLayout title="Page not found" subtitle="There is nothing at this address.">
      <Link to="/" className="font-medium text-indigo-600 hover:text-indigo-500">
        Go to the start page
      </Link>
    </AuthLayout>
  );
}

export function RouteErrorBoundary() {
  const error = useRouteError();
  const detail = isRouteErrorResponse(error) ? `${error.status} ${error.statusText}` : error instanceof Error ? error.message : null;
  return (
    <AuthLayout title="Something went wrong" subtitle="The page failed to show. Reloading usually helps.">
      {detail && <p className="mb-4 rounded bg-slate-100 p-2 font-mono text-xs text-slate-600">{detail}</p>}
      <button type="button" className="font-medium text-indigo-600 hover:text-indigo-500" onClick={() => window.location.reload()}>
        Reload
      </button>
    </AuthLayout>
  );
}
