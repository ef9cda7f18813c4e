package cvm

import (
	"fmt"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
)

// sendGuarded is common.Client.Send for the Region API and STS, with the
// same guard as describeInstancesStatus: a panic inside the SDK (it
// dereferences nil on a JSON `null` body) becomes ClientError.ParseJsonError.
func sendGuarded(c *common.Client, req tchttp.Request, resp tchttp.Response) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = tcerr.NewTencentCloudSDKError("ClientError.ParseJsonError", fmt.Sprintf("the SDK failed on the response: %v", r), "")
		}
	}()
	return c.Send(req, resp)
}
