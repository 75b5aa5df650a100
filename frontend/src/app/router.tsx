import { createBrowserRouter, Navigate } from 'react-router';
import { RouterProvider } from 'react-router/dom';
import { AssistantRoute } from './routes/app/assistant';
import { ChatRoute } from './routes/app/chat';
import { ContactsRoute } from './routes/app/contacts';
import { ProfileRoute } from './routes/app/profile';
import { AppShell } from './routes/app/shell';
import { ForgotPasswordRoute } from './routes/auth/forgot-password';
import { LoginRoute } from './routes/auth/login';
import { RegisterRoute } from './routes/auth/register';
import { ResetPasswordRoute } from './routes/auth/reset-password';
import { VerifyEmailRoute } from './routes/auth/verify-email';
import { RedirectIfAuthenticated, RequireAuth } from './routes/guards';
import { NotFoundRoute, RouteErrorBoundary } from './routes/not-found';

const router = createBrowserRouter([
  {
    errorElement: <RouteErrorBoundary />,
    children: [
      { path: '/login', element: <RedirectIfAuthenticated><LoginRoute /></RedirectIfAuthenticated> },
      { path: '/register', element: <RedirectIfAuthenticated><RegisterRoute /></RedirectIfAuthenticated> },
      { path: '/forgot-password', element: <ForgotPasswordRoute /> },
      { path: '/reset-password/:uid/:token', element: <ResetPasswordRoute /> },
      { path: '/verify-email/:uid/:token', element: <VerifyEmailRoute /> },
      {
        element: (
          <RequireAuth>
            <AppShell />
          </RequireAuth>
        ),
        children: [
          { index: true, element: <Navigate to="/chat" replace /> },
          { path: '/chat', element: <ChatRoute /> },
          { path: '/chat/:roomId', element: <ChatRoute /> },
          { path: '/contacts', element: <ContactsRoute /> },
          { path: '/assistant', element: <AssistantRoute /> },
          { path: '/assistant/:conversationId', element: <AssistantRoute /> },
          { path: '/profile', element: <ProfileRoute /> },
        ],
      },
      { path: '*', element: <NotFoundRoute /> },
    ],
  },
]);

export function AppRouter() {
  return <RouterProvider router={router} />;
}
